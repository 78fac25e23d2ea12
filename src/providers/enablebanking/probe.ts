/**
 * `mooring providers probe <name>` for an Enable Banking provider: checks, one step at a time, what
 * an operator needs before a user can connect — the application key signs a JWT as Enable Banking
 * documents it, Enable Banking accepts it (`GET /application`: the application is active, and
 * Mooring's callback URL is whitelisted), and the configured bank is listed (`GET /aspsps`, with
 * its maximum consent validity) — and says for each failure what to do about it.
 */
import { createPrivateKey } from 'node:crypto';
import type { CatalogEntry } from '../catalog.ts';
import { callProvider, checkShape, HttpStatusFailure } from '../http.ts';
import type { ProbeStep } from '../openbanking/probe.ts';
import { EB_JWT_TTL_S, signApplicationJwt } from './jwt.ts';
import { ApplicationResponse, AspspsResponse } from './schemas.ts';

const DAY_S = 86_400;

const message = (err: unknown): string => {
  if (err instanceof HttpStatusFailure) {
    const body = (typeof err.body === 'object' && err.body !== null ? err.body : {}) as { error?: unknown; message?: unknown };
    return `HTTP ${err.status}${typeof body.error === 'string' ? ` ${body.error}` : ''}${typeof body.message === 'string' ? `: ${body.message}` : ''}`;
  }
  const cause = (err as { cause?: { message?: unknown } }).cause;
  const base = err instanceof Error ? err.message : String(err);
  return typeof cause?.message === 'string' ? `${base} (${cause.message})` : base;
};

const refusedJwt = (err: unknown): boolean => err instanceof HttpStatusFailure && (err.status === 401 || err.status === 403);

export async function probeEnableBanking(provider: CatalogEntry, opts: { timeoutMs: number; publicUrl?: string; realNow?: () => number }): Promise<ProbeStep[]> {
  const s = provider.enablebanking;
  if (s === undefined) return [{ step: 'settings', ok: false, detail: `${provider.name} has no Enable Banking settings`, hint: 'set adapter: enablebanking and its settings' }];
  const realNow = opts.realNow ?? Date.now;
  const steps: ProbeStep[] = [];
  let jwt: string;
  try {
    jwt = await signApplicationJwt(s.applicationId, createPrivateKey(s.privateKey), { issuedAt: Math.floor(realNow() / 1000) });
    steps.push({ step: 'application JWT', ok: true, detail: `RS256, kid ${s.applicationId}, valid ${EB_JWT_TTL_S} s` });
  } catch (err) {
    steps.push({ step: 'application JWT', ok: false, detail: message(err), hint: 'settings.privateKey must be the RSA private key of the application (the .pem file Enable Banking gave you)' });
    return steps;
  }
  const get = (path: string, endpoint: string): Promise<unknown> =>
    callProvider({ method: 'GET', url: `${s.apiUrl}${path}`, endpoint, headers: { authorization: `Bearer ${jwt}` }, timeoutMs: opts.timeoutMs });

  try {
    const app = checkShape(ApplicationResponse, await get('/application', '/application'), 'the application');
    steps.push({
      step: 'application', ok: app.active,
      detail: `"${app.name}" (${app.environment}, ${app.active ? 'active' : 'NOT active'}; services ${(app.services ?? []).join(', ') || 'none'})`,
      ...(app.active ? {} : { hint: 'activate the application in the Enable Banking control panel (production applications need their contract signed)' }),
    });
    if (opts.publicUrl !== undefined) {
      const callback = `${opts.publicUrl.replace(/\/+$/, '')}/connect/callback`;
      const listed = app.redirect_urls.includes(callback);
      steps.push({
        step: 'redirect URL', ok: listed, detail: listed ? `${callback} is whitelisted` : `${callback} is not among ${app.redirect_urls.join(', ') || 'no URLs'}`,
        ...(listed ? {} : { hint: `add ${callback} to the application's redirect URLs in the Enable Banking control panel` }),
      });
    }
  } catch (err) {
    steps.push({
      step: 'application', ok: false, detail: `${s.apiUrl}/application: ${message(err)}`,
      hint: refusedJwt(err)
        ? `Enable Banking refused the JWT: settings.applicationId must be the application id (the kid, the name of the .pem file) and settings.privateKey that application's key`
        : 'check settings.apiUrl (https://api.enablebanking.com) and that this machine can reach it',
    });
    return steps;
  }

  try {
    const query = new URLSearchParams({ country: s.aspsp.country, psu_type: s.psuType, service: 'AIS' });
    const list = checkShape(AspspsResponse, await get(`/aspsps?${query.toString()}`, '/aspsps'), 'the list of banks').aspsps;
    const bank = list.find((a) => a.name === s.aspsp.name && a.country === s.aspsp.country);
    if (bank === undefined) {
      const similar = list.filter((a) => a.name.toLowerCase().includes(s.aspsp.name.toLowerCase().split(' ')[0] ?? '')).map((a) => a.name).slice(0, 5);
      steps.push({
        step: 'bank', ok: false, detail: `no bank named "${s.aspsp.name}" in ${s.aspsp.country} for ${s.psuType} customers (${list.length} listed)`,
        hint: `settings.aspsp.name must be the bank's name exactly as GET /aspsps lists it${similar.length > 0 ? ` (similar: ${similar.join(', ')})` : ''}`,
      });
    } else {
      const days = Math.floor(bank.maximum_consent_validity / DAY_S);
      const capped = provider.consentDays !== null && provider.consentDays >= days;
      steps.push({
        step: 'bank', ok: true,
        detail: `"${bank.name}" (${bank.country}) allows consents of up to ${days} days (maximum_consent_validity ${bank.maximum_consent_validity} s)${capped ? `; consentDays ${provider.consentDays} will be capped to it` : ''}`,
      });
    }
  } catch (err) {
    steps.push({ step: 'bank', ok: false, detail: `${s.apiUrl}/aspsps: ${message(err)}`, hint: 'Enable Banking could not list its banks: try again later' });
  }
  return steps;
}
