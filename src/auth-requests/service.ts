/**
 * Auth requests (Moneyhub's /auth-requests): the server builds the authorisation URL for a journey,
 * the client sends the user there, then completes the request with the callback's parameters and
 * learns the connection — no OpenID client library needed on its side.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { badRequest, conflict, notFound } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { requestedExpiryProblem } from '../connections/status.ts';
import { CONSENT_DAYS } from '../providers/kinds.ts';
import { parseJourneyRequest, paymentAsked } from '../journeys/request.ts';
import type { Catalog } from '../providers/catalog.ts';
import type { Page } from '../http/schemas.ts';
import { connectionsRepository } from '../connections/repository.ts';
import { journeysRepository } from '../journeys/repository.ts';
import { usersRepository } from '../users/repository.ts';
import { authRequestsRepository, type AuthRequestRow } from './repository.ts';
import { parseDateTime } from '../time.ts';

export interface CreateAuthRequest {
  redirectUri: string;
  scope: string;
  userId?: string;
  connectionId?: string;
  expirationDateTime?: string;
  transactionFromDateTime?: string;
  sync?: { enableAsync?: boolean };
  permissions?: string[];
}

export interface AuthParams {
  code?: string;
  state?: string;
  id_token?: string;
  error?: string;
  error_description?: string;
}

export function toAuthRequestJson(r: AuthRequestRow) {
  return {
    id: r.id,
    redirectUri: r.redirect_uri,
    createdAt: r.created_at.toISOString(),
    bankId: r.bank_id ?? '',
    ...(r.user_id !== null ? { userId: r.user_id } : {}),
    ...(r.connection_id !== null ? { connectionId: r.connection_id } : {}),
    scope: r.scope,
    status: r.status,
    ...(r.error !== null ? { error: r.error } : {}),
    ...(r.completed_at !== null ? { completedAt: r.completed_at.toISOString() } : {}),
    redirectParams: { authUrl: r.auth_url, state: r.state },
  };
}
export type AuthRequestJson = ReturnType<typeof toAuthRequestJson>;

export function authRequestsService(deps: { db: Db; oidc: Provider; clock: Clock; issuer: string; catalog: Catalog }) {
  const repo = authRequestsRepository(deps.db);

  return {
    async create(clientId: string, body: CreateAuthRequest): Promise<AuthRequestJson> {
      const payment = paymentAsked({ scope: body.scope, body: body as unknown as Record<string, unknown> });
      if (payment !== null) {
        throw badRequest('payments_not_supported', `Mooring does not offer payments (the request asks for ${payment}); it connects accounts for reading only`, { field: payment.startsWith('scope') ? 'scope' : payment });
      }
      const client = await deps.oidc.Client.find(clientId);
      if (client === undefined) throw notFound('Client');
      if (!client.redirectUris?.includes(body.redirectUri)) {
        throw badRequest('invalid_redirect_uri', 'redirectUri must be one of the redirect URIs registered for this client', { field: 'redirectUri' });
      }
      const claims: Record<string, unknown> = {
        sub: { essential: true, ...(body.userId !== undefined ? { value: body.userId } : {}) },
        'mh:con_id': { essential: true, ...(body.connectionId !== undefined ? { value: body.connectionId } : {}) },
      };
      const now = deps.clock.now();
      const requestedExpiry = body.expirationDateTime === undefined ? null : parseDateTime(body.expirationDateTime);
      const invalidExpiry = (consentDays: number) =>
        badRequest('invalid_expiration_date_time', `expirationDateTime must be a date-time in the future, at most ${consentDays} days from now`, { field: 'expirationDateTime' });
      if (body.expirationDateTime !== undefined) {
        if (requestedExpiry === null) throw invalidExpiry(CONSENT_DAYS);
        claims['mh:consent'] = { essential: true, value: { expirationDateTime: body.expirationDateTime } };
      }
      if (body.sync?.enableAsync === true) claims['mh:sync'] = { essential: true, value: { enableAsync: true } };
      const parsed = parseJourneyRequest({ scope: body.scope, claims: { id_token: claims } });
      if (!parsed.ok) throw badRequest('invalid_scope', parsed.description, { field: 'scope' });
      const req = parsed.request;
      if (req.bankId !== null && deps.catalog.get(req.bankId) === undefined) {
        throw badRequest('invalid_bank', `No provider has the id ${req.bankId}; see /oidc/.well-known/all-connections`, { field: 'scope' });
      }
      if (requestedExpiry !== null) {
        // The named bank's consent length; without a bank (a reauth names its connection) the
        // default length, and the journey checks again against the connection's provider.
        const consentDays = (req.bankId === null ? null : deps.catalog.get(req.bankId)?.consentDays) ?? CONSENT_DAYS;
        if (requestedExpiryProblem(requestedExpiry, consentDays, now) !== null) throw invalidExpiry(consentDays);
      }
      if (req.userId !== null) {
        if (!(await usersRepository(deps.db).existsForClient(req.userId, clientId))) throw badRequest('invalid_user', 'userId is not a user of this client', { field: 'userId' });
      }
      if (req.connectionId !== null) {
        if (!(await connectionsRepository(deps.db).existsForUser(req.connectionId, req.userId))) throw badRequest('invalid_connection', 'connectionId is not a connection of this user', { field: 'connectionId' });
      }
      const state = randomBytes(16).toString('base64url');
      const nonce = randomBytes(16).toString('base64url');
      const url = new URL(`${deps.issuer}/auth`);
      for (const [k, v] of Object.entries({
        client_id: clientId, redirect_uri: body.redirectUri, response_type: 'code', scope: body.scope, state, nonce, prompt: 'consent',
        claims: JSON.stringify({ id_token: claims }),
      })) url.searchParams.set(k, v);
      const id = randomUUID();
      await repo.insert({
        id, client_id: clientId, user_id: req.userId, scope: body.scope, bank_id: req.bankId, connection_id: req.connectionId,
        redirect_uri: body.redirectUri, state, nonce, auth_url: url.toString(), created_at: now,
      });
      const row = await repo.find(clientId, id);
      if (row === undefined) throw new Error('auth request vanished after insert');
      return toAuthRequestJson(row);
    },

    async get(clientId: string, id: string): Promise<AuthRequestJson> {
      const row = isUuid(id) ? await repo.find(clientId, id) : undefined;
      if (row === undefined) throw notFound('Auth request');
      return toAuthRequestJson(row);
    },

    async list(clientId: string, page: Page): Promise<{ data: AuthRequestJson[]; total: number }> {
      const { rows, total } = await repo.list(clientId, page.limit, page.offset);
      return { data: rows.map(toAuthRequestJson), total };
    },

    /** Completes a request with what the user's browser brought back to the redirect URI. */
    async complete(clientId: string, id: string, params: AuthParams): Promise<AuthRequestJson> {
      const row = isUuid(id) ? await repo.find(clientId, id) : undefined;
      if (row === undefined) throw notFound('Auth request');
      if (row.status !== 'pending') throw conflict('auth_request_settled', `This auth request is already ${row.status}`);
      if (params.state !== undefined && params.state !== row.state) throw badRequest('state_mismatch', 'state does not match the auth request', { field: 'authParams.state' });
      const now = deps.clock.now();
      if (params.error !== undefined) {
        await repo.settle(id, { status: 'error', userId: null, connectionId: null, error: [params.error, params.error_description].filter((x) => x !== undefined).join(': '), now });
        return this.get(clientId, id);
      }
      if (params.code === undefined) throw badRequest('missing_code', 'authParams.code is required (or authParams.error)', { field: 'authParams.code' });
      const code = await deps.oidc.AuthorizationCode.find(params.code);
      const consumed = code !== undefined && (code as unknown as { consumed?: unknown }).consumed !== undefined;
      // The code must come from this auth request's own journey (its nonce), not another of the client's.
      if (code === undefined || consumed || code.isExpired || code.clientId !== clientId || code.redirectUri !== row.redirect_uri || code.nonce !== row.nonce) {
        throw badRequest('invalid_code', 'The code is invalid, expired, already used, or was not issued for this auth request', { field: 'authParams.code' });
      }
      await code.consume();
      const outcome = code.grantId === undefined ? undefined : await journeysRepository(deps.db).connectionOfGrant(code.grantId);
      await repo.settle(id, { status: 'complete', userId: code.accountId ?? null, connectionId: outcome?.connectionId ?? null, error: null, now });
      return this.get(clientId, id);
    },
  };
}
export type AuthRequestsService = ReturnType<typeof authRequestsService>;
