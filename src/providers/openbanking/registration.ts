/**
 * `mooring providers register <name> --ssa <file>`: Open Banking Dynamic Client Registration
 * (v3.2/v3.3): a registration request signed with the provider's signing key (PS256), carrying the
 * software statement assertion from the Open Banking directory, POSTed as `application/jwt` over
 * mutual TLS to the bank's registration endpoint. The bank answers with the client id the
 * operator puts in the providers file.
 */
import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { decodeJwt, SignJWT } from 'jose';
import { fetch as undiciFetch } from 'undici';
import type { CatalogEntry } from '../catalog.ts';
import { settingsOf, transportAgent } from './client.ts';

export interface RegistrationResult {
  ok: boolean;
  status: number;
  clientId?: string;
  /** The bank's answer, or what went wrong, in words. */
  detail: string;
  body?: unknown;
}

/** RFC 4514 form of a certificate's subject (most specific first), as banks compare tls_client_auth_subject_dn. */
export function subjectDn(certPem: string): string {
  const lines = new X509Certificate(certPem).subject.split('\n').filter((l) => l !== '');
  return lines.reverse().map((l) => l.replace(/([,+"\\<>;])/g, '\\$1')).join(',');
}

export async function registerWithBank(
  provider: CatalogEntry,
  opts: { ssa: string; redirectUri: string; audience?: string; timeoutMs: number; realNow?: () => number },
): Promise<RegistrationResult> {
  const s = settingsOf(provider);
  const realNow = opts.realNow ?? Date.now;
  let statement: Record<string, unknown>;
  try {
    statement = decodeJwt(opts.ssa.trim());
  } catch {
    return { ok: false, status: 0, detail: 'the --ssa file is not a software statement assertion (a signed JWT from the Open Banking directory)' };
  }
  const softwareId = typeof statement.software_id === 'string' ? statement.software_id : undefined;
  if (softwareId === undefined) return { ok: false, status: 0, detail: 'the software statement carries no software_id' };

  const agent = transportAgent(s);
  try {
    const disc = await undiciFetch(s.wellKnownUrl, { dispatcher: agent, signal: AbortSignal.timeout(opts.timeoutMs), headers: { accept: 'application/json' } });
    if (disc.status !== 200) return { ok: false, status: disc.status, detail: `the discovery document answered HTTP ${disc.status}; check settings.wellKnownUrl` };
    const meta = (await disc.json()) as { issuer?: string; registration_endpoint?: string; mtls_endpoint_aliases?: { registration_endpoint?: string } };
    const endpoint = meta.mtls_endpoint_aliases?.registration_endpoint ?? meta.registration_endpoint;
    if (endpoint === undefined || meta.issuer === undefined) {
      return { ok: false, status: 0, detail: 'the bank publishes no registration_endpoint: register through its developer portal instead' };
    }
    const now = Math.floor(realNow() / 1000);
    const privateKeyJwt = s.tokenEndpointAuthMethod === 'private_key_jwt';
    const claims = {
      redirect_uris: [opts.redirectUri],
      token_endpoint_auth_method: s.tokenEndpointAuthMethod,
      ...(privateKeyJwt ? { token_endpoint_auth_signing_alg: 'PS256' } : { tls_client_auth_subject_dn: subjectDn(s.transportCert) }),
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: [s.responseType],
      software_id: softwareId,
      scope: 'openid accounts',
      software_statement: opts.ssa.trim(),
      application_type: 'web',
      id_token_signed_response_alg: 'PS256',
      request_object_signing_alg: 'PS256',
      ...(s.responseType === 'code' ? { authorization_signed_response_alg: 'PS256' } : {}),
    };
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'PS256', kid: s.signingKeyId, typ: 'JWT' })
      .setIssuer(softwareId)
      .setAudience(opts.audience ?? meta.issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .setJti(randomUUID())
      .sign(createPrivateKey(s.signingKey));
    const res = await undiciFetch(endpoint, {
      method: 'POST', dispatcher: agent, signal: AbortSignal.timeout(opts.timeoutMs),
      headers: { 'content-type': 'application/jwt', accept: 'application/json', 'x-fapi-interaction-id': randomUUID() },
      body: jwt,
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    const clientId = typeof body === 'object' && body !== null && typeof (body as { client_id?: unknown }).client_id === 'string' ? (body as { client_id: string }).client_id : undefined;
    if (res.status === 201 && clientId !== undefined) return { ok: true, status: res.status, clientId, detail: `registered at ${endpoint}`, body };
    const error = typeof body === 'object' && body !== null ? body as { error?: string; error_description?: string } : {};
    return {
      ok: false, status: res.status, body,
      detail: `the bank refused the registration (HTTP ${res.status}${error.error === undefined ? '' : `, ${error.error}`}${error.error_description === undefined ? '' : `: ${error.error_description}`})`,
    };
  } catch (err) {
    return { ok: false, status: 0, detail: `could not reach the bank over mutual TLS: ${err instanceof Error ? err.message : String(err)}; check the transport certificate, settings.ca and settings.wellKnownUrl` };
  } finally {
    await agent.close().catch(() => undefined);
  }
}
