/**
 * `mooring providers probe <name>` for a GoCardless entry: a token pair from the secret pair, then
 * the institution the entry names (and its limits, which cap consentDays and maxHistoricalDays),
 * each step ok or FAIL with what to fix. It issues one token pair (GoCardless allows 100 an hour).
 */
import type { CatalogEntry } from '../catalog.ts';
import { callProvider, checkShape, HttpStatusFailure } from '../http.ts';
import type { ProbeStep } from '../openbanking/probe.ts';
import { GC_MAX_ACCESS_DAYS, institutionDays, settingsOf } from './adapter.ts';
import { errorBodyOf } from './mapping.ts';
import { Institution, TokenPair } from './schemas.ts';

const message = (err: unknown): string => {
  if (err instanceof HttpStatusFailure) {
    const b = errorBodyOf(err.body);
    return `HTTP ${err.status}${b.summary === '' ? '' : `: ${b.summary}`}${b.detail === '' ? '' : ` (${b.detail})`}`;
  }
  const cause = (err as { cause?: { message?: unknown } }).cause;
  const base = err instanceof Error ? err.message : String(err);
  return typeof cause?.message === 'string' ? `${base} (${cause.message})` : base;
};

export async function probeGoCardless(provider: CatalogEntry, opts: { timeoutMs: number }): Promise<ProbeStep[]> {
  const s = settingsOf(provider);
  const steps: ProbeStep[] = [];
  let access: string;
  try {
    const t = checkShape(TokenPair, await callProvider({
      method: 'POST', url: `${s.apiUrl}/token/new/`, endpoint: '/token/new/', json: { secret_id: s.secretId, secret_key: s.secretKey }, timeoutMs: opts.timeoutMs,
    }), 'the token pair');
    access = t.access;
    steps.push({ step: 'token pair', ok: true, detail: `issued by ${s.apiUrl}/token/new/ (access for ${t.access_expires} s, refresh for ${t.refresh_expires} s)` });
  } catch (err) {
    const refused = err instanceof HttpStatusFailure && (err.status === 401 || err.status === 403);
    steps.push({
      step: 'token pair', ok: false, detail: message(err),
      hint: refused
        ? 'GoCardless refused the secret pair: copy settings.secretId and settings.secretKey again from the Bank Account Data portal (User secrets)'
        : `check settings.apiUrl (default https://bankaccountdata.gocardless.com/api/v2) and that this machine can reach it`,
    });
    return steps;
  }
  try {
    const body = await callProvider({
      method: 'GET', url: `${s.apiUrl}/institutions/${encodeURIComponent(s.institutionId)}/`, endpoint: '/institutions/{institutionId}/',
      headers: { authorization: `Bearer ${access}` }, timeoutMs: opts.timeoutMs,
    });
    const i = checkShape(Institution, body, 'the institution');
    const maxAccess = Math.min(institutionDays(i.max_access_valid_for_days), GC_MAX_ACCESS_DAYS);
    const totalDays = institutionDays(i.transaction_total_days);
    const notes: string[] = [];
    if (provider.consentDays !== null && provider.consentDays > maxAccess) notes.push(`consentDays ${provider.consentDays} will be capped at ${maxAccess}`);
    if (s.maxHistoricalDays > totalDays) notes.push(`maxHistoricalDays ${s.maxHistoricalDays} will be capped at ${totalDays}`);
    steps.push({
      step: 'institution', ok: true,
      detail: `${i.name} (${i.id}): max_access_valid_for_days ${String(i.max_access_valid_for_days ?? 'not given (90)')}, transaction_total_days ${String(i.transaction_total_days ?? 'not given (90)')}${notes.length > 0 ? `; ${notes.join('; ')}` : ''}`,
    });
  } catch (err) {
    const missing = err instanceof HttpStatusFailure && (err.status === 404 || err.status === 400);
    steps.push({
      step: 'institution', ok: false, detail: `${s.institutionId}: ${message(err)}`,
      hint: missing
        ? 'settings.institutionId is not an institution GoCardless knows: list them with GET /institutions/?country=gb and copy the id (e.g. SANDBOXFINANCE_SFIN0000)'
        : 'GoCardless did not answer as expected; try again, and check settings.apiUrl',
    });
  }
  return steps;
}
