/**
 * The browser journeys of SPEC section 8: connect, reauth, reconsent and refresh. Each runs inside
 * an OpenID interaction: Mooring's consent page, then the provider (a redirect to the bank, or a
 * form Mooring renders), then back to the client with a code whose ID token names the connection.
 */
import type { SecretBox } from '../crypto/secrets.ts';
import { randomBytes, randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { connectionsRepository, type ConnectionsRepository } from '../connections/repository.ts';
import { consentExpiry, needsReauthAtProvider, requestedExpiryProblem } from '../connections/status.ts';
import type { Catalog, CatalogEntry } from '../providers/catalog.ts';
import { CONSENT_DAYS, renewsConsentAtProvider } from '../providers/kinds.ts';
import { journeyFailureIsProviders } from '../providers/health.ts';
import { providersRepository } from '../providers/repository.ts';
import type { ProviderCallLog } from '../provider-calls/writer.ts';
import { adapterFor, ProviderError, type FormField, type Json, type JsonObject, type JourneyStep, type ProviderAdapters } from '../providers/provider.ts';
import type { SyncEngine } from '../syncs/engine.ts';
import { nextScheduledSync } from '../syncs/cadence.ts';
import { usersRepository } from '../users/repository.ts';
import { newUserId } from '../users/service.ts';
import { consentPage, messagePage, providerFormPage } from './pages.ts';
import { journeysRepository, type JourneyRow } from './repository.ts';
import { parseJourneyRequest, type JourneyRequest } from './request.ts';
import { parseDateTime } from '../time.ts';

const isJsonObject = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export type JourneyResponse =
  | { kind: 'page'; html: string; status?: number }
  | { kind: 'redirect'; url: string }
  /** Finish the interaction: back to the client with a code, or with an OAuth error. */
  | { kind: 'finish'; result: InteractionResults };

export interface InteractionInfo {
  uid: string;
  clientId: string;
  params: Record<string, unknown>;
}

export interface JourneysDeps {
  db: Db;
  oidc: Provider;
  catalog: Catalog;
  adapters: ProviderAdapters;
  clock: Clock;
  engine: SyncEngine;
  /** Tells listeners (webhooks) that a connection's state may have changed. */
  changeConnection(connectionId: string, change: (connections: ConnectionsRepository) => Promise<void>): Promise<void>;
  publicUrl: string;
  sandbox: boolean;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Opens and seals provider grants. */
  secrets: SecretBox;
  /** Records the provider calls a journey makes (the provider call log). */
  callLog?: ProviderCallLog;
}

/**
 * The `state` a provider's answer carries: a parameter, or inside a JARM response (a JWT, read
 * here only to find the journey; the adapter verifies it), or — GoCardless, which has no `state` —
 * the requisition's `reference`, sent back as `ref` (its adapter makes the reference the state).
 */
export function callbackState(params: Record<string, string>): string | null {
  if (params.state !== undefined && params.state !== '') return params.state;
  if (params.ref !== undefined && params.ref !== '' && params.response === undefined) return params.ref;
  if (params.response === undefined) return null;
  try {
    const state = decodeJwt(params.response).state;
    return typeof state === 'string' && state !== '' ? state : null;
  } catch {
    return null;
  }
}

const fail = (error: string, description: string): JourneyResponse => ({ kind: 'finish', result: { error, error_description: description } });
/** Why a reconsent is refused once the provider ended the consent itself (status.ts needsReauthAtProvider). */
const reauthNeeded = (provider: CatalogEntry): string =>
  `${provider.name} ended this connection's consent itself; only a new authorisation at ${provider.name} renews it: use reauth`;

export function journeysService(deps: JourneysDeps) {
  const journeys = journeysRepository(deps.db);
  const connections = connectionsRepository(deps.db, deps.secrets);
  const users = usersRepository(deps.db);
  /** Where every redirect-based provider sends the user back (SPEC section 10); the journey is found by `state`. */
  const callbackUrl = `${deps.publicUrl}/connect/callback`;

  async function clientName(clientId: string): Promise<string> {
    const client = await deps.oidc.Client.find(clientId);
    const name = client?.metadata().client_name;
    return typeof name === 'string' && name !== '' ? name : clientId;
  }

  /** The consent expiry the journey asked for (at most the provider's consent length), null for the default. */
  function requestedExpiry(req: JourneyRequest, provider: CatalogEntry, now: Date): Date | null | 'invalid' {
    if (provider.consentDays === null || req.requestedExpiry === null) return null;
    const d = parseDateTime(req.requestedExpiry);
    if (d === null || requestedExpiryProblem(d, provider.consentDays, now) !== null) return 'invalid';
    return d;
  }

  /** Consent runs from the moment it is given: the requested expiry, or the provider's length from now. */
  const expiryAt = (journey: JourneyRow, provider: CatalogEntry, now: Date): Date | null =>
    provider.consentDays === null ? null : (journey.consent_expires_at ?? consentExpiry(now, provider.consentDays));
  /**
   * The expiry of a granted consent: the provider's own when it decides one (a GoCardless agreement's
   * end, an Enable Banking session's valid_until: it may cap what was asked), else what was asked.
   */
  const grantedExpiry = (journey: JourneyRow, provider: CatalogEntry, step: JourneyStep & { kind: 'done' }, now: Date): Date | null =>
    step.expiresAt ?? expiryAt(journey, provider, now);

  /** Runs adapter work of a journey with its provider calls recorded. */
  const recorded = <T>(journey: JourneyRow, provider: CatalogEntry, fn: () => Promise<T>): Promise<T> =>
    deps.callLog === undefined ? fn() : deps.callLog.run({ providerId: provider.id, connectionId: journey.connection_id, journeyId: journey.uid }, fn);

  /** Validates the request against stored data; answers the provider and the connection to repair, if any. */
  async function resolve(info: InteractionInfo, req: JourneyRequest): Promise<{ provider: CatalogEntry; connectionId: string | null } | JourneyResponse> {
    if (req.userId !== null && !(await users.existsForClient(req.userId, info.clientId))) {
      return fail('invalid_request', 'the user in claims.id_token.sub is not a user of this client');
    }
    if (req.kind === 'connect') {
      const provider = deps.catalog.get(req.bankId ?? '');
      if (provider === undefined) return fail('invalid_scope', `no provider has the id ${req.bankId ?? ''}`);
      if (await providersRepository(deps.db).isRetired(provider.id)) return fail('invalid_request', `${provider.name} has been removed and accepts no new connections`);
      return { provider, connectionId: null };
    }
    const conn = req.connectionId === null ? undefined : await connections.findById(req.connectionId);
    if (conn === undefined || conn.user_id !== req.userId) return fail('invalid_request', 'the connection in claims.id_token["mh:con_id"] does not exist for this user');
    const provider = deps.catalog.get(conn.provider_id);
    if (provider === undefined) return fail('invalid_request', 'the provider of this connection has been removed; connect a different provider');
    if (req.kind === 'reconsent' && !conn.tpp_consent) {
      return fail('invalid_request', `reconsent is not available for this ${provider.name} connection (tppConsent is false); use reauth`);
    }
    if (req.kind === 'reconsent' && provider.consentDays === null) return fail('invalid_request', `${provider.name} sets no consent expiry; there is nothing to reconsent`);
    if (req.kind === 'reconsent' && needsReauthAtProvider({ expiredUpstream: conn.upstream_expired_at !== null, renewsConsentAtProvider: renewsConsentAtProvider(provider.adapter) })) {
      return fail('invalid_request', reauthNeeded(provider));
    }
    if (req.kind === 'refresh' && provider.type !== 'legacy') return fail('invalid_request', `refresh is only for legacy connections; ${provider.name} is ${provider.type}, use reauth`);
    return { provider, connectionId: conn.id };
  }

  async function load(uid: string): Promise<{ journey: JourneyRow; provider: CatalogEntry } | JourneyResponse> {
    const journey = await journeys.find(uid);
    const provider = journey?.provider_id == null ? undefined : deps.catalog.get(journey.provider_id);
    if (journey === undefined || provider === undefined) return { kind: 'page', status: 400, html: messagePage('This page has expired', 'Go back to the app and start again.') };
    if (journey.step === 'done' || journey.step === 'failed') return { kind: 'page', status: 400, html: messagePage('Already finished', 'This journey has finished. Go back to the app.') };
    return { journey, provider };
  }

  /**
   * Once the provider granted access: stores the user, the connection (or its new grant) and the
   * journey's step `granted` in one transaction, then runs the first sync and finishes. A crash
   * after that transaction leaves a journey the same callback can finish (see `resume`); a crash
   * before it leaves nothing, so starting the journey again makes exactly one connection.
   */
  async function complete(journey: JourneyRow, provider: CatalogEntry, granted: { grant: JourneyStep & { kind: 'done' } }, ip: string): Promise<JourneyResponse> {
    const now = deps.clock.now();
    const { userId, connectionId } = await deps.db.transaction(async (tx) => {
      const txConnections = connectionsRepository(tx, deps.secrets);
      let user = journey.user_id;
      if (user === null) {
        user = newUserId();
        await usersRepository(tx).insert({ id: user, clientId: journey.client_id, clientUserId: null, userType: deps.sandbox ? 'test' : 'live', scopes: '', now });
      }
      let connection = journey.connection_id;
      if (connection === null) {
        connection = `${provider.id}:${randomUUID()}`;
        await txConnections.insert({
          id: connection, userId: user, providerId: provider.id, now, expiresAt: grantedExpiry(journey, provider, granted.grant, now),
          tppConsent: provider.tppConsent, providerRef: granted.grant.ref, grant: granted.grant.grant, nextSyncAt: nextScheduledSync(provider, now),
        });
      } else {
        await txConnections.replaceGrant(connection, { grant: granted.grant.grant, providerRef: granted.grant.ref, expiresAt: grantedExpiry(journey, provider, granted.grant, now), now });
        await txConnections.scheduleIfIdle(connection, nextScheduledSync(provider, now));
      }
      await usersRepository(tx).touch(user, now);
      await journeysRepository(tx).update(journey.uid, { step: 'granted', userId: user, connectionId: connection, authOutcome: 'granted', now });
      return { userId: user, connectionId: connection };
    });
    // The first sync runs before the user returns to the client, unless the client asked for async.
    const outcome = await deps.engine.sync({ connectionId, action: 'auto-update', attended: true, customerIpAddress: ip }, { wait: !journey.enable_async, enforceBudget: false, fresh: true });
    const syncId = outcome.kind === 'skipped' ? null : outcome.sync.id;
    return finishWithGrant(journey, userId, connectionId, journey.enable_async ? syncId : null);
  }

  /**
   * The same callback again after the provider's grant was stored (the process died during the
   * first sync, or before the redirect reached the browser): the bank's code was single-use and is
   * not exchanged again; the journey finishes with the connection it already made. Its first sync
   * is joined if still under way (a crashed one is finished by the reaper), else started.
   */
  async function resume(journey: JourneyRow, ip: string): Promise<JourneyResponse> {
    const { user_id: userId, connection_id: connectionId } = journey;
    if (userId === null || connectionId === null) return { kind: 'page', status: 400, html: messagePage('Something went wrong', 'This journey cannot be finished. Go back to the app and start again.') };
    const outcome = await deps.engine.sync({ connectionId, action: 'auto-update', attended: true, customerIpAddress: ip }, { wait: false, enforceBudget: false });
    const syncId = outcome.kind === 'skipped' ? null : outcome.sync.id;
    return finishWithGrant(journey, userId, connectionId, journey.enable_async ? syncId : null);
  }

  async function finishWithGrant(journey: JourneyRow, userId: string, connectionId: string, syncId: string | null): Promise<JourneyResponse> {
    const grant = new deps.oidc.Grant({ accountId: userId, clientId: journey.client_id });
    grant.addOIDCScope(journey.scope);
    grant.addOIDCClaims(['sub', 'mh:con_id', 'mh:sync', 'mh:consent']);
    const grantId = await grant.save();
    await journeys.recordGrantConnection(grantId, connectionId, syncId);
    await journeys.update(journey.uid, { step: 'done', userId, connectionId, now: deps.clock.now() });
    return { kind: 'finish', result: { login: { accountId: userId }, consent: { grantId } } };
  }

  async function handleStep(journey: JourneyRow, provider: CatalogEntry, step: JourneyStep, ip: string): Promise<JourneyResponse> {
    const now = deps.clock.now();
    if (step.kind === 'redirect') {
      await journeys.update(journey.uid, { step: 'provider', pending: { adapter: step.pending }, now });
      return { kind: 'redirect', url: step.url };
    }
    if (step.kind === 'form') {
      await journeys.update(journey.uid, { step: 'provider', pending: { adapter: step.pending, fields: step.fields as unknown as Json }, now });
      return { kind: 'page', html: providerFormPage({ uid: journey.uid, providerName: provider.name, fields: step.fields, ...(step.message !== undefined ? { message: step.message } : {}) }) };
    }
    return complete(journey, provider, { grant: step }, ip);
  }

  async function providerFailure(journey: JourneyRow, provider: CatalogEntry, err: unknown): Promise<JourneyResponse> {
    if (!(err instanceof ProviderError)) {
      deps.log.error({ uid: journey.uid, err: err instanceof Error ? err.stack : String(err) }, 'journey failed with an unexpected error');
      await journeys.update(journey.uid, { step: 'failed', now: deps.clock.now() });
      return fail('server_error', 'Mooring could not complete the journey');
    }
    if (err.kind === 'invalid_input') {
      const fields = journey.pending.fields;
      if (Array.isArray(fields)) {
        await journeys.update(journey.uid, { step: 'provider', now: deps.clock.now() });
        return { kind: 'page', status: 400, html: providerFormPage({ uid: journey.uid, providerName: provider.name, fields: fields as unknown as FormField[], error: err.safeDetail }) };
      }
    }
    await journeys.update(journey.uid, { step: 'failed', now: deps.clock.now(), ...(journeyFailureIsProviders(err) ? { authOutcome: 'failed' as const } : {}) });
    if (err.kind === 'journey_rejected') return fail('access_denied', `the user did not authorise access at ${provider.name}`);
    if (err.kind === 'credentials' || err.kind === 'invalid_input') return fail('access_denied', `${provider.name} did not accept the user's credentials`);
    // The provider refused the consent as expired (a GoCardless requisition EX or expired agreement): a refusal, not an outage (SPEC section 8).
    if (err.kind === 'consent_expired') return fail('access_denied', `${provider.name} refused the authorisation: ${err.safeDetail}`);
    return fail('temporarily_unavailable', `${provider.name} is not available right now (${err.safeDetail}); try again later`);
  }

  return {
    /** GET /connect/:uid — validate the request and show the consent page. */
    async start(info: InteractionInfo): Promise<JourneyResponse> {
      const parsed = parseJourneyRequest(info.params);
      if (!parsed.ok) return fail(parsed.error, parsed.description);
      const req = parsed.request;
      const resolved = await resolve(info, req);
      if ('kind' in resolved) return resolved;
      const now = deps.clock.now();
      const expiresAt = req.kind === 'refresh' ? null : requestedExpiry(req, resolved.provider, now);
      if (expiresAt === 'invalid') {
        return fail('invalid_request', `mh:consent expirationDateTime must be a date-time in the future, at most ${resolved.provider.consentDays ?? CONSENT_DAYS} days from now`);
      }
      await journeys.upsert({
        uid: info.uid, client_id: info.clientId, user_id: req.userId, kind: req.kind, scope: typeof info.params.scope === 'string' ? info.params.scope : 'openid', provider_id: resolved.provider.id,
        connection_id: resolved.connectionId, consent_expires_at: expiresAt, enable_async: req.enableAsync, step: 'consent', now,
      });
      const journey = await journeys.find(info.uid);
      if (journey === undefined || journey.step !== 'consent') return { kind: 'page', status: 400, html: messagePage('Already in progress', 'This journey has already started. Go back to the app and start again.') };
      return {
        kind: 'page',
        html: consentPage({ uid: info.uid, kind: req.kind, clientName: await clientName(info.clientId), providerName: resolved.provider.name, expiresAt: req.kind === 'refresh' ? null : expiryAt(journey, resolved.provider, now) }),
      };
    },

    /** POST /connect/:uid/consent — the user allowed or declined. */
    async consent(uid: string, decision: string, ip: string): Promise<JourneyResponse> {
      const loaded = await load(uid);
      if ('kind' in loaded) return loaded;
      const { journey, provider } = loaded;
      if (!(await journeys.claim(uid, 'consent', deps.clock.now()))) return { kind: 'page', status: 400, html: messagePage('Already answered', 'You have already answered this page.') };
      if (decision !== 'allow') {
        await journeys.update(uid, { step: 'failed', now: deps.clock.now() });
        return fail('access_denied', 'the user declined to share their data');
      }
      // Where the consent lives at the provider (renewsConsentAtProvider), reconsent is a new authorisation there, never a local date change.
      if (journey.kind === 'reconsent' && !renewsConsentAtProvider(provider.adapter)) {
        const connectionId = journey.connection_id ?? '';
        const now = deps.clock.now();
        let renewed = false;
        await deps.changeConnection(connectionId, async (txConnections) => {
          // Refused, and nothing changes, when a sync recorded the provider's own expiry since the journey started.
          renewed = await txConnections.renewConsent(connectionId, expiryAt(journey, provider, now), now);
          if (renewed) await txConnections.scheduleIfIdle(connectionId, nextScheduledSync(provider, now));
        });
        if (!renewed) {
          await journeys.update(uid, { step: 'failed', now: deps.clock.now() });
          return fail('invalid_request', reauthNeeded(provider));
        }
        return finishWithGrant(journey, journey.user_id ?? '', connectionId, null);
      }
      const state = randomBytes(16).toString('base64url');
      await journeys.update(uid, { step: 'provider', providerState: state, now: deps.clock.now() });
      const existingGrant = journey.connection_id === null ? undefined : await connections.grantOf(journey.connection_id);
      try {
        const step = await recorded(journey, provider, () => adapterFor(deps.adapters, provider).startAuthorisation({
          provider, callbackUrl, state,
          // For tppConsent providers renewal is only the user's consent to the client (reconsent, PATCH),
          // so the grant at the provider must not lapse on its own: Mooring's expiresAt governs.
          // (Unless the consent is an agreement at the provider with its own end, renewed there: renewsConsentAtProvider.)
          consentExpiresAt: provider.tppConsent && !renewsConsentAtProvider(provider.adapter) ? null : expiryAt(journey, provider, deps.clock.now()),
          ...(existingGrant !== undefined ? { existingGrant } : {}),
          now: deps.clock.now(),
        }));
        return await handleStep({ ...journey, provider_state: state }, provider, step, ip);
      } catch (err) {
        return providerFailure(journey, provider, err);
      }
    },

    /**
     * GET or POST /connect/callback — the provider sent the user back: answers the journey's own
     * callback (where its interaction cookie is sent), or null when no journey gave that state.
     */
    async journeyCallbackUrl(params: Record<string, string>): Promise<string | null> {
      const state = callbackState(params);
      const uid = state === null ? undefined : await journeys.uidOfProviderState(state);
      return uid === undefined ? null : `${deps.publicUrl}/connect/${encodeURIComponent(uid)}/callback`;
    },

    /** GET or POST /connect/:uid/callback — the provider sent the user back (redirect journeys). */
    async callback(uid: string, query: Record<string, string>, ip: string): Promise<JourneyResponse> {
      const stored = await journeys.find(uid);
      // A parameter, or inside a JARM response: the adapter then verifies that it is the state it sent.
      const state = callbackState(query);
      if (stored !== undefined && (stored.step === 'granted' || stored.step === 'done') && stored.provider_state !== null && state === stored.provider_state) {
        return resume(stored, ip);
      }
      const loaded = await load(uid);
      if ('kind' in loaded) return loaded;
      const { journey, provider } = loaded;
      if (journey.step !== 'provider' || journey.provider_state === null || state !== journey.provider_state) {
        return { kind: 'page', status: 400, html: messagePage('Something went wrong', 'The answer from the provider does not match this journey. Go back to the app and start again.') };
      }
      return this.provide(journey, provider, query, ip);
    },

    /** POST /connect/:uid/provider — the user filled in a provider form (form journeys). */
    async providerForm(uid: string, fields: Record<string, string>, ip: string): Promise<JourneyResponse> {
      const loaded = await load(uid);
      if ('kind' in loaded) return loaded;
      if (loaded.journey.step !== 'provider') return { kind: 'page', status: 400, html: messagePage('Something went wrong', 'This form is not expected now. Go back to the app and start again.') };
      return this.provide(loaded.journey, loaded.provider, fields, ip);
    },

    async provide(journey: JourneyRow, provider: CatalogEntry, input: Record<string, string>, ip: string): Promise<JourneyResponse> {
      if (!(await journeys.claim(journey.uid, 'provider', deps.clock.now()))) {
        return { kind: 'page', status: 400, html: messagePage('Already answered', 'This step has already been answered. Go back to the app.') };
      }
      try {
        const pending = journey.pending.adapter;
        const step = await recorded(journey, provider, () => adapterFor(deps.adapters, provider).completeAuthorisation({ provider, pending: isJsonObject(pending) ? pending : {}, input, callbackUrl }));
        return await handleStep(journey, provider, step, ip);
      } catch (err) {
        return providerFailure(journey, provider, err);
      }
    },
  };
}
export type JourneysService = ReturnType<typeof journeysService>;
