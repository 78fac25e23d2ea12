/**
 * The Open Banking sandbox banks' machine-facing API, on the mutual-TLS listener (mtls.ts):
 *   /sandbox/ob/:slug/token, /token/revocation, /me          the bank's authorization server
 *   /sandbox/ob/:slug/open-banking/v3.1/aisp/account-access-consents[/{ConsentId}]   OBIE AIS consents
 *   /sandbox/ob/:slug/open-banking/v3.1/aisp/accounts…       accounts, balances, transactions (openbanking-data.ts)
 * Consent calls take a client-credentials token with scope `accounts`, resource calls an access
 * token of an authorised consent; both must be bound to the client certificate presented
 * (RFC 8705 x5t#S256). Errors follow the Read/Write API profile: the OBIE error body, 400 with
 * UK.OBIE.Resource.NotFound for an unknown id, and 401 without a body for a token that is not valid.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { CatalogEntry } from '../../providers/catalog.ts';
import { behaviourDelay } from './behaviours.ts';
import { peerCertificate, peerCertificateTrusted, type SandboxObBanks } from './fapi-provider.ts';
import { AISP_PATH, sandboxResourceBase } from './fapi-settings.ts';
import { BankError, bearerToken, INVALID_TOKEN, invalidToken, providerGate, providerOf, renderBankErrors, type BankFailure, type SandboxBankDeps } from './http.ts';
import { openBankingDataRoutes } from './openbanking-data.ts';
import { getConsent, insertConsent, setConsentStatus, type ConsentRow } from './store.ts';

export const OB_PERMISSIONS = [
  'ReadAccountsBasic', 'ReadAccountsDetail', 'ReadBalances', 'ReadBeneficiariesBasic', 'ReadBeneficiariesDetail',
  'ReadDirectDebits', 'ReadOffers', 'ReadPAN', 'ReadParty', 'ReadPartyPSU', 'ReadProducts', 'ReadScheduledPaymentsBasic',
  'ReadScheduledPaymentsDetail', 'ReadStandingOrdersBasic', 'ReadStandingOrdersDetail', 'ReadStatementsBasic',
  'ReadStatementsDetail', 'ReadTransactionsBasic', 'ReadTransactionsCredits', 'ReadTransactionsDebits', 'ReadTransactionsDetail',
] as const;

const Slug = Type.Object({ slug: Type.String() });
const SlugAndId = Type.Object({ slug: Type.String(), consentId: Type.String() });
const ConsentBody = Type.Object({
  Data: Type.Object({
    Permissions: Type.Array(Type.String(), { minItems: 1 }),
    ExpirationDateTime: Type.Optional(Type.String()),
    TransactionFromDateTime: Type.Optional(Type.String()),
    TransactionToDateTime: Type.Optional(Type.String()),
  }),
  Risk: Type.Object({}),
});

/** The OBIE error response structure (Read/Write API profile); a refused token gets no body. */
export function renderObError(f: BankFailure): unknown {
  if (f.code === INVALID_TOKEN) return undefined;
  const code = f.code.startsWith('UK.OBIE.') ? f.code : f.status >= 500 ? 'UK.OBIE.UnexpectedError' : 'UK.OBIE.Field.Invalid';
  return { Code: String(f.status), Id: randomUUID(), Message: f.message, Errors: [{ ErrorCode: code, Message: f.message }] };
}

/** Every answer carries x-fapi-interaction-id: the client's, or a new UUID. */
export function fapiInteractionId(app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply) => {
    const id = req.headers['x-fapi-interaction-id'];
    reply.header('x-fapi-interaction-id', typeof id === 'string' && id !== '' ? id : randomUUID());
  });
}

/** The client-credentials token of the request, bound to the presented certificate, with scope `accounts`. */
async function requireClientToken(banks: SandboxObBanks, req: FastifyRequest, provider: CatalogEntry): Promise<void> {
  const value = bearerToken(req);
  const token = value === null ? undefined : await banks.provider(provider.bankRef).ClientCredentials.find(value);
  if (token === undefined) throw invalidToken('a valid client credentials token is required');
  const bound = (token as unknown as { 'x5t#S256'?: string })['x5t#S256'];
  if (bound === undefined || bound !== peerCertificate(req.raw)?.thumbprint) throw invalidToken('the token is not bound to this client certificate');
  if (!token.scopes.has('accounts')) throw new BankError(403, 'UK.OBIE.Resource.ConsentMismatch', 'The token does not have the accounts scope');
}

export function consentBody(c: ConsentRow, selfBase: string): unknown {
  return {
    Data: {
      ConsentId: c.id,
      CreationDateTime: c.createdAt.toISOString(),
      Status: c.status,
      StatusUpdateDateTime: c.statusUpdatedAt.toISOString(),
      Permissions: c.permissions,
      ...(c.expiresAt === null ? {} : { ExpirationDateTime: c.expiresAt.toISOString() }),
    },
    Risk: {},
    Links: { Self: `${selfBase}/account-access-consents/${c.id}` },
    Meta: { TotalPages: 1 },
  };
}

export async function openBankingApiRoutes(app: FastifyInstance, deps: SandboxBankDeps, banks: SandboxObBanks): Promise<void> {
  // The authorization server's machine-facing endpoints: it reads its own request bodies.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    scope.addHook('onRequest', providerGate(deps, 'openbanking'));
    renderBankErrors(scope, (f) => ({ error: f.code, error_description: f.message }));
    const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const provider = providerOf(req);
      // As a bank's gateway does: no trusted client certificate, no client (the provider would say invalid_grant).
      if (peerCertificate(req.raw) === null || !peerCertificateTrusted(req.raw)) {
        throw new BankError(401, 'invalid_client', 'A client certificate issued by a CA the bank trusts is required');
      }
      const url = req.raw.url ?? '/';
      const rest = url.slice(url.indexOf(`/sandbox/ob/${provider.bankRef}`) + `/sandbox/ob/${provider.bankRef}`.length);
      reply.hijack();
      await banks.handle(provider.bankRef, rest, banks.deps.mtlsUrl, req.ip, req.raw, reply.raw);
    };
    for (const path of ['token', 'token/revocation', 'me']) scope.all(`/sandbox/ob/:slug/${path}`, handler);
  });

  await app.register(async (scope) => {
    const r = scope.withTypeProvider<TypeBoxTypeProvider>();
    r.addHook('onRequest', providerGate(deps, 'openbanking'));
    fapiInteractionId(scope);
    renderBankErrors(r, renderObError);
    const selfBase = (req: FastifyRequest): string => sandboxResourceBase(banks.deps.mtlsUrl, providerOf(req).bankRef);
    const consentOf = async (req: FastifyRequest, id: string): Promise<ConsentRow> => {
      const consent = await getConsent(deps.db, id, providerOf(req).id);
      if (consent === null) throw new BankError(400, 'UK.OBIE.Resource.NotFound', `No account-access consent ${id}`);
      return consent;
    };

    r.post(`${AISP_PATH}/account-access-consents`, { schema: { params: Slug, body: ConsentBody } }, async (req, reply) => {
      const provider = providerOf(req);
      await requireClientToken(banks, req, provider);
      const { Permissions, ExpirationDateTime } = req.body.Data;
      const unknown = Permissions.filter((p) => !(OB_PERMISSIONS as readonly string[]).includes(p));
      if (unknown.length > 0) throw new BankError(400, 'UK.OBIE.Field.Invalid', `Unknown permissions: ${unknown.join(', ')}`);
      const now = deps.clock.now();
      let expiresAt: Date | null = null;
      if (ExpirationDateTime !== undefined) {
        expiresAt = new Date(ExpirationDateTime);
        if (Number.isNaN(expiresAt.getTime())) throw new BankError(400, 'UK.OBIE.Field.InvalidDate', 'ExpirationDateTime must be an ISO 8601 date-time');
        if (expiresAt <= now) throw new BankError(400, 'UK.OBIE.Field.InvalidDate', 'ExpirationDateTime must be in the future');
      }
      const consent = await insertConsent(deps.db, { providerId: provider.id, permissions: [...new Set(Permissions)], expiresAt, now });
      return reply.status(201).send(consentBody(consent, selfBase(req)));
    });

    r.get(`${AISP_PATH}/account-access-consents/:consentId`, { schema: { params: SlugAndId } }, async (req) => {
      await requireClientToken(banks, req, providerOf(req));
      return consentBody(await consentOf(req, req.params.consentId), selfBase(req));
    });

    r.delete(`${AISP_PATH}/account-access-consents/:consentId`, { schema: { params: SlugAndId } }, async (req, reply) => {
      await requireClientToken(banks, req, providerOf(req));
      const consent = await consentOf(req, req.params.consentId);
      await behaviourDelay(consent.behaviour, deps.slowCallMs);
      // Its tokens stop working at once: resource calls check the consent, refreshes find no account.
      await setConsentStatus(deps.db, consent.id, 'Revoked', deps.clock.now());
      return reply.status(204).send();
    });

    await openBankingDataRoutes(r, deps, banks);
  });
}
