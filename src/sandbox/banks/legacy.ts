/**
 * The legacy (credential-based) sandbox provider, e.g. Aviva: an HTTP API, not a page; Mooring
 * renders its own credentials form. Routes under `/sandbox/legacy/:slug`:
 *   POST /login      { username, password, otp? } → 200 { credentialId, credentialToken }
 *                    or 401 { error: 'otp_required', challenge } (user_mfa) / { error: 'invalid_otp' }
 *   POST /login/otp  { challenge, otp } → 200 as above, or 401 { error: 'invalid_otp' }
 *   GET  /portfolio  (Bearer credentialToken; `x-customer-ip-address` when the customer is present)
 *                    → { asOf, accounts: [{ id, name, type, currency, value, transactions }] }
 *                    or 429 { error: 'rate_limited' } with Retry-After (user_ratelimited, from its 2nd sync)
 *   POST /logout     (Bearer credentialToken) → 204
 * The one-time code is 123456. Each /portfolio call counts one sync.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { CatalogEntry } from '../../providers/catalog.ts';
import { behaviourDelay, behaviourFor, dataAsOf, RATE_LIMIT_RETRY_AFTER_SECONDS, syncOutcome } from './behaviours.ts';
import { accountKindOf, customerSeed, decimalAmount, sandboxAccounts, sandboxBalanceMinor, sandboxTransactions } from './generator.ts';
import { BankError, bearerToken, headerPresent, parseDateParam, providerGate, providerOf, renderBankErrors, type SandboxBankDeps } from './http.ts';
import {
  consumeToken, countSync, findToken, getCredential, insertCredential, issueToken, revokeTokensOf, updateCredential,
  type CredentialRow,
} from './store.ts';
import { DAY_MS } from '../../time.ts';

export const SANDBOX_ONE_TIME_CODE = '123456';
export const LEGACY_CUSTOMER_PRESENT_HEADER = 'x-customer-ip-address';
const CREDENTIAL_TOKEN_TTL_MS = 400 * DAY_MS;
const OTP_CHALLENGE_TTL_MS = 10 * 60 * 1000;
const MAX_OTP_ATTEMPTS = 5;

const Slug = Type.Object({ slug: Type.String() });
const LoginBody = Type.Object({
  username: Type.String({ maxLength: 200 }),
  password: Type.Optional(Type.String({ maxLength: 200 })),
  otp: Type.Optional(Type.String({ maxLength: 20 })),
});
const OtpBody = Type.Object({ challenge: Type.String(), otp: Type.String({ maxLength: 20 }) });
const PortfolioQuery = Type.Object({ from: Type.Optional(Type.String()) });

async function issueCredentialToken(deps: SandboxBankDeps, provider: CatalogEntry, credentialId: string): Promise<unknown> {
  const credentialToken = await issueToken(deps.db, { kind: 'credential', providerId: provider.id, subjectId: credentialId, ttlMs: CREDENTIAL_TOKEN_TTL_MS });
  return { credentialId, credentialToken };
}

async function activeCredential(deps: SandboxBankDeps, req: FastifyRequest, provider: CatalogEntry): Promise<CredentialRow> {
  const token = bearerToken(req);
  const found = token === null ? null : await findToken(deps.db, token, 'credential', provider.id);
  const credential = found?.subjectId == null ? null : await getCredential(deps.db, found.subjectId, provider.id);
  if (credential === null || credential.status !== 'active') {
    throw new BankError(401, 'invalid_credentials', 'These credentials are no longer accepted; log in again');
  }
  return credential;
}

export async function legacyRoutes(app: FastifyInstance, deps: SandboxBankDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.addHook('onRequest', providerGate(deps, 'legacy'));
  renderBankErrors(r, (f) => ({ error: f.code, message: f.message }));
  const P = '/sandbox/legacy/:slug';

  r.post(`${P}/login`, { schema: { params: Slug, body: LoginBody } }, async (req, reply) => {
    const provider = providerOf(req);
    const username = req.body.username.trim();
    if (username === '') throw new BankError(400, 'invalid_request', 'username is required');
    const behaviour = behaviourFor(username);
    await behaviourDelay(behaviour, deps.slowCallMs);
    const now = deps.clock.now();
    if (behaviour !== 'user_mfa' || req.body.otp === SANDBOX_ONE_TIME_CODE) {
      const id = await insertCredential(deps.db, { providerId: provider.id, username, behaviour, status: 'active', now });
      return issueCredentialToken(deps, provider, id);
    }
    const id = await insertCredential(deps.db, { providerId: provider.id, username, behaviour, status: 'awaiting_otp', now });
    const challenge = await issueToken(deps.db, { kind: 'otp_challenge', providerId: provider.id, subjectId: id, ttlMs: OTP_CHALLENGE_TTL_MS });
    return reply.status(401).send(
      req.body.otp === undefined
        ? { error: 'otp_required', message: 'Enter the one-time code we sent to your phone', challenge }
        : { error: 'invalid_otp', message: 'That code is not right', challenge },
    );
  });

  r.post(`${P}/login/otp`, { schema: { params: Slug, body: OtpBody } }, async (req, reply) => {
    const provider = providerOf(req);
    const challenge = await findToken(deps.db, req.body.challenge, 'otp_challenge', provider.id);
    const credential = challenge?.subjectId == null ? null : await getCredential(deps.db, challenge.subjectId, provider.id);
    if (credential === null || credential.status !== 'awaiting_otp') {
      throw new BankError(401, 'challenge_expired', 'This login has expired; start again');
    }
    await behaviourDelay(credential.behaviour, deps.slowCallMs);
    if (req.body.otp.trim() !== SANDBOX_ONE_TIME_CODE) {
      await updateCredential(deps.db, credential.id, { otpFailed: true });
      if (credential.otpAttempts + 1 >= MAX_OTP_ATTEMPTS) {
        await consumeToken(deps.db, req.body.challenge, 'otp_challenge', provider.id);
        throw new BankError(401, 'challenge_expired', 'Too many wrong codes; start again');
      }
      return reply.status(401).send({ error: 'invalid_otp', message: 'That code is not right', challenge: req.body.challenge });
    }
    await consumeToken(deps.db, req.body.challenge, 'otp_challenge', provider.id);
    await updateCredential(deps.db, credential.id, { status: 'active', authorisedAt: deps.clock.now() });
    return issueCredentialToken(deps, provider, credential.id);
  });

  r.get(`${P}/portfolio`, { schema: { params: Slug, querystring: PortfolioQuery } }, async (req) => {
    const provider = providerOf(req);
    const credential = await activeCredential(deps, req, provider);
    await behaviourDelay(credential.behaviour, deps.slowCallMs);
    const syncNumber = await countSync(deps.db, 'sandbox_credentials', credential.id);
    const outcome = syncOutcome(credential.behaviour, syncNumber, headerPresent(req, LEGACY_CUSTOMER_PRESENT_HEADER));
    if (outcome === 'provider_error') throw new BankError(500, 'internal_error', 'Our systems are busy; try again later');
    if (outcome === 'mfa_required') throw new BankError(401, 'otp_required', 'Log in with your one-time code to see your portfolio');
    // No consent to expire here: user_expired is refused as user_revoked is.
    if (outcome === 'revoked' || outcome === 'expired') throw new BankError(401, 'invalid_credentials', 'Your password has changed; log in again');
    if (outcome === 'rate_limited') {
      throw new BankError(429, 'rate_limited', 'Too many requests for this portfolio; try again later', { 'retry-after': String(RATE_LIMIT_RETRY_AFTER_SECONDS) });
    }
    const from = parseDateParam(req.query.from, 'from');
    const authorisedAt = credential.authorisedAt ?? deps.clock.now();
    const asOf = dataAsOf(credential.behaviour, authorisedAt, deps.clock.now());
    const seed = customerSeed(provider.id, credential.username);
    const accounts = sandboxAccounts(seed, provider.accountTypes.map((t) => accountKindOf(t.name)));
    return {
      asOf: asOf.toISOString(),
      accounts: accounts.map((a, index) => {
        // user_partial: the second account's transactions cannot be retrieved.
        const failed = outcome === 'partial' && index === 1;
        return {
          id: a.id,
          name: a.name,
          type: a.kind,
          currency: 'GBP',
          value: decimalAmount(sandboxBalanceMinor(seed, accounts, a, asOf)),
          transactions: failed
            ? null
            : sandboxTransactions(seed, accounts, { authorisedAt, asOf, from }, a.id).map((t) => ({
                id: t.id,
                date: t.bookedAt.toISOString(),
                amount: decimalAmount(t.amountMinor),
                description: t.description,
              })),
          ...(failed ? { transactionsError: 'temporarily_unavailable' } : {}),
        };
      }),
    };
  });

  r.post(`${P}/logout`, { schema: { params: Slug } }, async (req, reply) => {
    const provider = providerOf(req);
    const credential = await activeCredential(deps, req, provider);
    await updateCredential(deps.db, credential.id, { status: 'revoked' });
    await revokeTokensOf(deps.db, credential.id);
    return reply.status(204).send();
  });
}
