/**
 * Reads what a journey asks for from the authorisation request's scope and claims, as the official
 * Moneyhub client builds them. Pure: no I/O.
 */
import { BANK_SCOPE_PREFIX, splitScope } from '../oauth/scopes.ts';

export const JOURNEY_KINDS = ['connect', 'reauth', 'reconsent', 'refresh'] as const;
export type JourneyKind = (typeof JOURNEY_KINDS)[number];

export interface JourneyRequest {
  kind: JourneyKind;
  /** connect: the provider chosen with `id:<bankId>`. */
  bankId: string | null;
  /** `claims.id_token.sub.value`: the user the journey is for (connect without it creates a user). */
  userId: string | null;
  /** `claims.id_token.mh:con_id.value`: the connection to repair (reauth, reconsent, refresh). */
  connectionId: string | null;
  /** `mh:consent.value.expirationDateTime`, or the request object's top-level expirationDateTime (PAR). */
  requestedExpiry: string | null;
  /** `mh:sync.value.enableAsync` (or top-level enableAsync): answer before the first sync finishes. */
  enableAsync: boolean;
}

export type ParseResult = { ok: true; request: JourneyRequest } | { ok: false; error: 'invalid_scope' | 'invalid_request'; description: string };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function claimValue(idTokenClaims: Obj, name: string): unknown {
  const c = idTokenClaims[name];
  return isObj(c) ? c.value : undefined;
}

export function parseJourneyRequest(params: { scope?: unknown; claims?: unknown; expirationDateTime?: unknown; enableAsync?: unknown }): ParseResult {
  const scopes = splitScope(typeof params.scope === 'string' ? params.scope : '');
  let claims: Obj = {};
  if (typeof params.claims === 'string' && params.claims !== '') {
    try {
      const parsed: unknown = JSON.parse(params.claims);
      if (isObj(parsed)) claims = parsed;
    } catch {
      return { ok: false, error: 'invalid_request', description: 'claims is not valid JSON' };
    }
  } else if (isObj(params.claims)) {
    claims = params.claims;
  }
  const idToken = isObj(claims.id_token) ? claims.id_token : {};
  const sub = claimValue(idToken, 'sub');
  const conId = claimValue(idToken, 'mh:con_id');
  const consent = claimValue(idToken, 'mh:consent');
  const sync = claimValue(idToken, 'mh:sync');

  const bankScopes = scopes.filter((s) => s.startsWith(BANK_SCOPE_PREFIX));
  const repairs = (['reauth', 'reconsent', 'refresh'] as const).filter((k) => scopes.includes(k));
  if (bankScopes.length > 1) return { ok: false, error: 'invalid_scope', description: 'ask for one provider (id:<bankId>) at a time' };
  if (repairs.length > 1) return { ok: false, error: 'invalid_scope', description: 'reauth, reconsent and refresh cannot be combined' };
  if (bankScopes.length > 0 && repairs.length > 0) return { ok: false, error: 'invalid_scope', description: `${repairs[0]} cannot be combined with an id: scope` };

  let expiry: string | null = null;
  if (isObj(consent) && typeof consent.expirationDateTime === 'string') expiry = consent.expirationDateTime;
  else if (typeof params.expirationDateTime === 'string' && params.expirationDateTime !== '') expiry = params.expirationDateTime;
  const enableAsync = (isObj(sync) && sync.enableAsync === true) || params.enableAsync === true || params.enableAsync === 'true';

  const base = {
    userId: typeof sub === 'string' && sub !== '' ? sub : null,
    connectionId: typeof conId === 'string' && conId !== '' ? conId : null,
    requestedExpiry: expiry,
    enableAsync,
  };
  const repair = repairs[0];
  if (repair !== undefined) {
    if (base.userId === null) return { ok: false, error: 'invalid_request', description: `${repair} needs the user: claims.id_token.sub.value` };
    if (base.connectionId === null) return { ok: false, error: 'invalid_request', description: `${repair} needs the connection: claims.id_token["mh:con_id"].value` };
    return { ok: true, request: { kind: repair, bankId: null, ...base } };
  }
  const bank = bankScopes[0];
  if (bank === undefined) return { ok: false, error: 'invalid_scope', description: 'ask for a provider with an id:<bankId> scope, or for reauth, reconsent or refresh' };
  return { ok: true, request: { kind: 'connect', bankId: bank.slice(BANK_SCOPE_PREFIX.length), ...base } };
}

/** Scopes that ask for payments, which Mooring does not offer (SPEC section 4). */
export const PAYMENT_SCOPES = ['payment', 'reverse_payment', 'standing_order', 'recurring_payment', 'payee:create'] as const;
const PAYMENT_CLAIMS = ['payment', 'mh:payment', 'mh:reversePayment', 'mh:reverse_payment', 'mh:standingOrder', 'mh:standing_order', 'mh:recurringPayment', 'mh:recurring_payment', 'mh:payee'];
const PAYMENT_BODY_KEYS = ['payment', 'reversePayment', 'standingOrder', 'recurringPayment', 'payee'];

/** What in a request asks for a payment (a scope, a claim or a body field), or null when nothing does. */
export function paymentAsked(params: { scope?: unknown; claims?: unknown; body?: Record<string, unknown> }): string | null {
  const scope = splitScope(typeof params.scope === 'string' ? params.scope : '').find((s) => (PAYMENT_SCOPES as readonly string[]).includes(s));
  if (scope !== undefined) return `scope ${scope}`;
  let claims: unknown = params.claims;
  if (typeof claims === 'string') {
    try {
      claims = JSON.parse(claims);
    } catch {
      claims = {};
    }
  }
  if (isObj(claims)) {
    for (const part of [claims.id_token, claims.userinfo]) {
      if (!isObj(part)) continue;
      const claim = PAYMENT_CLAIMS.find((c) => part[c] !== undefined);
      if (claim !== undefined) return `claim ${claim}`;
    }
  }
  const key = PAYMENT_BODY_KEYS.find((k) => params.body?.[k] !== undefined && params.body[k] !== null);
  return key === undefined ? null : key;
}
