/**
 * Moneyhub's `POST /request`: a client posts a signed request object (no client authentication;
 * the signature is the authentication) and gets back a request URI to send the user to. Mooring
 * verifies the signature with the client's registered key or secret and keeps the request object
 * as an oidc-provider pushed authorisation request, so the authorisation endpoint resolves it.
 */
import { createHash } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import type Provider from 'oidc-provider';
import { badRequest } from '../errors.ts';

export const REQUEST_URN_PREFIX = 'urn:ietf:params:oauth:request_uri:';
/** How long a request URI from POST /request stays usable. */
export const REQUEST_URI_TTL_SECONDS = 600;
/** How far ahead a request object's `exp` may be (a longer-lived object is a longer replay window). */
export const MAX_REQUEST_OBJECT_LIFETIME_SECONDS = 3600;

export async function storeRequestObject(oidc: Provider, issuer: string, jws: string): Promise<string> {
  let clientId: string | undefined;
  let alg: string | undefined;
  try {
    alg = decodeProtectedHeader(jws).alg;
    const payload = decodeJwt(jws);
    clientId = typeof payload.client_id === 'string' ? payload.client_id : typeof payload.iss === 'string' ? payload.iss : undefined;
  } catch {
    throw badRequest('invalid_request_object', 'The body must be a signed request object (a compact JWS)');
  }
  if (clientId === undefined) throw badRequest('invalid_request_object', 'The request object must carry client_id');
  const client = await oidc.Client.find(clientId);
  if (client === undefined) throw badRequest('invalid_request_object', 'The request object names an unknown client');
  if (alg === undefined || alg === 'none') throw badRequest('invalid_request_object', 'The request object must be signed');
  if (client.requestObjectSigningAlg !== undefined && client.requestObjectSigningAlg !== alg) {
    throw badRequest('invalid_request_object', `The request object must be signed with ${client.requestObjectSigningAlg}, the client's registered algorithm`);
  }
  try {
    if (alg.startsWith('HS')) {
      if (client.clientSecret === undefined) throw new Error('no secret');
      await jwtVerify(jws, new TextEncoder().encode(client.clientSecret), { algorithms: [alg], audience: issuer, requiredClaims: ['exp'] });
    } else {
      const jwks = client.metadata().jwks as JSONWebKeySet | undefined;
      if (jwks === undefined) throw new Error('no keys');
      await jwtVerify(jws, createLocalJWKSet(jwks), { algorithms: [alg], audience: issuer, requiredClaims: ['exp'] });
    }
  } catch {
    throw badRequest('invalid_request_object', 'The request object signature, audience or expiry (exp is required) is not valid for this client');
  }
  const { exp, jti } = decodeJwt(jws);
  // Security timers keep real time (not the sandbox clock), as token lifetimes do.
  const nowSeconds = Math.floor(Date.now() / 1000);
  if (typeof exp !== 'number' || exp > nowSeconds + MAX_REQUEST_OBJECT_LIFETIME_SECONDS) {
    throw badRequest('invalid_request_object', `The request object's exp must be at most ${MAX_REQUEST_OBJECT_LIFETIME_SECONDS} seconds ahead`);
  }
  // One signed object, one request URI: remembered (by jti, else by its hash) until it expires.
  const seen = typeof jti === 'string' && jti !== '' ? `jti:${jti}` : `jws:${createHash('sha256').update(jws).digest('base64url')}`;
  if (!(await oidc.ReplayDetection.unique(clientId, seen, exp + 60))) {
    throw badRequest('invalid_request_object', 'This request object has already been used; sign a new one for each request');
  }
  // `trusted` marks the request object as verified (done above), as oidc-provider's own PAR endpoint does.
  const par = new oidc.PushedAuthorizationRequest({ request: jws, trusted: true as unknown as string[] });
  const id = await par.save(REQUEST_URI_TTL_SECONDS);
  return `${REQUEST_URN_PREFIX}${id}`;
}

/**
 * The official client sends the user to `<authorization_endpoint>?request_uri=…` alone; oidc-provider
 * needs client_id beside it. Answers the authorisation URL's query with client_id added from the
 * stored request object, or null to leave the request as it is.
 */
export async function withClientIdFromRequestUri(oidc: Provider, search: URLSearchParams): Promise<URLSearchParams | null> {
  const uri = search.get('request_uri');
  if (uri === null || search.has('client_id') || !uri.startsWith(REQUEST_URN_PREFIX)) return null;
  const par = await oidc.PushedAuthorizationRequest.find(uri.slice(REQUEST_URN_PREFIX.length));
  const request = par?.request;
  if (typeof request !== 'string') return null;
  const payload = decodeJwt(request);
  const clientId = typeof payload.client_id === 'string' ? payload.client_id : payload.iss;
  if (typeof clientId !== 'string') return null;
  const out = new URLSearchParams(search);
  out.set('client_id', clientId);
  return out;
}
