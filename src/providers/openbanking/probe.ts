/**
 * `mooring providers probe <name>` for an Open Banking bank: checks, one step at a time, what an
 * operator needs before a user can connect — the certificates and keys, the bank's discovery
 * document and keys, a client-credentials token over mutual TLS, and the AIS endpoint — and says
 * for each failure what to do about it.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import * as oidc from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import type { CatalogEntry } from '../catalog.ts';
import type { OpenBankingSettings } from '../settings.ts';
import { buildObClient, certificateMatchesKey, settingsOf, transportAgent } from './client.ts';

export interface ProbeStep {
  step: string;
  ok: boolean;
  detail: string;
  /** What the operator should do when the step failed. */
  hint?: string;
}

const message = (err: unknown): string => {
  if (err instanceof oidc.ResponseBodyError) return `${err.status} ${err.error}${err.error_description === undefined ? '' : `: ${err.error_description}`}`;
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  const base = err instanceof Error ? err.message : String(err);
  return typeof cause?.message === 'string' ? `${base} (${cause.message})` : base;
};

function credentialSteps(s: OpenBankingSettings, realNow: number): ProbeStep[] {
  const steps: ProbeStep[] = [];
  try {
    const cert = new X509Certificate(s.transportCert);
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    const valid = from <= realNow && realNow < to;
    steps.push({
      step: 'transport certificate',
      ok: valid && certificateMatchesKey(s.transportCert, s.transportKey),
      detail: `subject ${cert.subject.replace(/\n/g, ', ')}; issued by ${cert.issuer.replace(/\n/g, ', ')}; valid ${cert.validFrom} to ${cert.validTo}`,
      ...(!valid
        ? { hint: 'the certificate is not valid now: issue a new transport certificate in the Open Banking directory and update settings.transportCert' }
        : !certificateMatchesKey(s.transportCert, s.transportKey)
          ? { hint: 'settings.transportKey is not the key of settings.transportCert: point both at the same pair' }
          : {}),
    });
  } catch (err) {
    steps.push({ step: 'transport certificate', ok: false, detail: message(err), hint: 'settings.transportCert must be a PEM certificate' });
  }
  try {
    const key = createPrivateKey(s.signingKey);
    const rsa = key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss';
    steps.push({
      step: 'signing key',
      ok: rsa,
      detail: `${key.asymmetricKeyType ?? 'unknown'} key, kid ${s.signingKeyId}`,
      ...(rsa ? {} : { hint: 'Open Banking signs with PS256: settings.signingKey must be an RSA key (2048 bits or more)' }),
    });
  } catch (err) {
    steps.push({ step: 'signing key', ok: false, detail: message(err), hint: 'settings.signingKey must be a PEM private key' });
  }
  return steps;
}

export async function probeOpenBanking(provider: CatalogEntry, opts: { timeoutMs: number; realNow?: () => number }): Promise<ProbeStep[]> {
  const realNow = opts.realNow ?? Date.now;
  const s = settingsOf(provider);
  const steps = credentialSteps(s, realNow());
  const agent = transportAgent(s);
  const get = async (url: string): Promise<{ status: number; json: unknown }> => {
    const res = await undiciFetch(url, { dispatcher: agent, signal: AbortSignal.timeout(opts.timeoutMs), headers: { accept: 'application/json' } });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json };
  };
  try {
    let discovery: Record<string, unknown> | undefined;
    try {
      const d = await get(s.wellKnownUrl);
      if (d.status !== 200 || typeof d.json !== 'object' || d.json === null) throw new Error(`HTTP ${d.status}${d.json === undefined ? ', not JSON' : ''}`);
      discovery = d.json as Record<string, unknown>;
      const aliases = (discovery.mtls_endpoint_aliases ?? {}) as Record<string, unknown>;
      const problems: string[] = [];
      const has = (field: string, value: string): boolean => Array.isArray(discovery?.[field]) && (discovery[field] as unknown[]).includes(value);
      if (!has('token_endpoint_auth_methods_supported', s.tokenEndpointAuthMethod)) problems.push(`it does not list ${s.tokenEndpointAuthMethod} among token_endpoint_auth_methods_supported`);
      if (!has('request_object_signing_alg_values_supported', 'PS256')) problems.push('it does not list PS256 for request objects');
      if (!has('response_types_supported', s.responseType)) problems.push(`it does not support response_type "${s.responseType}"`);
      if (s.responseType === 'code' && !has('response_modes_supported', 'jwt')) problems.push('it does not support JARM (response_mode jwt), which response_type "code" needs');
      steps.push({
        step: 'discovery',
        ok: problems.length === 0,
        detail: `issuer ${String(discovery.issuer)}; token endpoint ${String(aliases.token_endpoint ?? discovery.token_endpoint)}${aliases.token_endpoint === undefined ? '' : ' (mTLS alias)'}${problems.length > 0 ? `; but ${problems.join('; ')}` : ''}`,
        ...(problems.length > 0 ? { hint: 'set settings.responseType / settings.tokenEndpointAuthMethod to what the bank supports' } : {}),
      });
    } catch (err) {
      steps.push({ step: 'discovery', ok: false, detail: `${s.wellKnownUrl}: ${message(err)}`, hint: 'check settings.wellKnownUrl (the bank publishes it in its developer documentation) and that this machine can reach it' });
      return steps;
    }
    try {
      const jwksUri = String(discovery.jwks_uri);
      const k = await get(jwksUri);
      const keys = (k.json as { keys?: unknown[] } | undefined)?.keys;
      if (k.status !== 200 || !Array.isArray(keys)) throw new Error(`HTTP ${k.status}, no key set`);
      steps.push({ step: 'bank keys', ok: keys.length > 0, detail: `${keys.length} key(s) at ${jwksUri}`, ...(keys.length === 0 ? { hint: 'the bank publishes no keys: Mooring cannot verify its ID tokens' } : {}) });
    } catch (err) {
      steps.push({ step: 'bank keys', ok: false, detail: message(err), hint: 'the bank\'s jwks_uri must be reachable from this machine' });
    }
    let token: string | undefined;
    try {
      const client = await buildObClient(provider, { timeoutMs: opts.timeoutMs, realNow });
      try {
        const t = await oidc.clientCredentialsGrant(client.config, { scope: 'accounts' });
        token = t.access_token;
        steps.push({ step: 'client-credentials token', ok: true, detail: `issued over mutual TLS with ${s.tokenEndpointAuthMethod} (expires in ${t.expires_in ?? '?'} s)` });
      } finally {
        await client.dispatcher.close().catch(() => undefined);
      }
    } catch (err) {
      const invalidClient = err instanceof oidc.ResponseBodyError && (err.error === 'invalid_client' || err.error === 'unauthorized_client');
      steps.push({
        step: 'client-credentials token', ok: false, detail: message(err),
        hint: invalidClient
          ? `the bank does not accept client "${s.clientId}" as presented: check settings.clientId (from registration), settings.signingKeyId (the kid registered in the directory) and that the transport certificate is the one registered${s.tokenEndpointAuthMethod === 'tls_client_auth' ? ' (its subject must match the registered tls_client_auth_subject_dn)' : ''}`
          : 'the token endpoint could not be reached over mutual TLS: check the transport certificate and key, and settings.ca if the bank\'s server certificate is issued by a CA this machine does not trust',
      });
    }
    if (token !== undefined) {
      try {
        const res = await undiciFetch(`${s.resourceBaseUrl}/account-access-consents/mooring-probe`, {
          dispatcher: agent, signal: AbortSignal.timeout(opts.timeoutMs),
          headers: { accept: 'application/json', authorization: `Bearer ${token}`, 'x-fapi-interaction-id': crypto.randomUUID(), ...(s.financialId === null ? {} : { 'x-fapi-financial-id': s.financialId }) },
        });
        await res.text();
        const reachable = res.status < 500 && res.status !== 401;
        steps.push({
          step: 'account information API', ok: reachable, detail: `${s.resourceBaseUrl} answered ${res.status} to a consent look-up`,
          ...(reachable ? {} : { hint: 'check settings.resourceBaseUrl (e.g. https://api.bank.example/open-banking/v3.1/aisp) and settings.financialId' }),
        });
      } catch (err) {
        steps.push({ step: 'account information API', ok: false, detail: message(err), hint: 'check settings.resourceBaseUrl and that this machine can reach it' });
      }
    }
    return steps;
  } finally {
    await agent.close().catch(() => undefined);
  }
}
