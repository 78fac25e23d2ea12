/**
 * The client_credentials grant, re-registered to accept Moneyhub's non-standard `sub` parameter:
 * the user the token acts for. The user must belong to the requesting client, else the grant fails
 * exactly as it would for a user that does not exist.
 */
import { errors, type Provider, type TokenEndpointGrantContext } from 'oidc-provider';
import type { Db } from '../db/db.ts';
import { usersRepository } from '../users/repository.ts';
import { isApiScope, splitScope } from './scopes.ts';
import { isUserId } from '../ids.ts';
import type { TokenCache } from './token-cache.ts';

export function registerClientCredentialsGrant(provider: Provider, db: Db, cache: TokenCache): void {
  const handler = async (ctx: TokenEndpointGrantContext<{ sub?: string }>): Promise<void> => {
    const { client, params } = ctx.oidc;
    const requested = splitScope(params.scope);
    const allowed = new Set(splitScope(client.scope));
    for (const scope of requested) {
      if (!isApiScope(scope)) throw new errors.InvalidScope('requested scope is not supported', scope);
      if (allowed.size > 0 && !allowed.has(scope)) throw new errors.InvalidScope('requested scope is not allowed for this client', scope);
    }
    const sub = params.sub;
    if (sub !== undefined && sub !== '') {
      if (!isUserId(sub)) throw new errors.InvalidGrant('sub is not a user of this client');
      if (!(await usersRepository(db).existsForClient(sub, client.clientId))) throw new errors.InvalidGrant('sub is not a user of this client');
    }
    const token = new provider.ClientCredentials({
      client,
      scope: requested.join(' ') || undefined,
      ...(sub !== undefined && sub !== '' ? { extra: { sub } } : {}),
    });
    ctx.oidc.entity('ClientCredentials', token);
    const value = await token.save();
    if (token.exp !== undefined) {
      cache.set(value, { clientId: client.clientId, scopes: new Set(requested), userId: sub !== undefined && sub !== '' ? sub : null }, token.exp * 1000);
    }
    ctx.body = {
      access_token: value,
      expires_in: token.expiration,
      token_type: 'Bearer',
      scope: token.scope ?? '',
    };
  };
  provider.registerGrantType('client_credentials', handler, ['scope', 'sub']);
}
