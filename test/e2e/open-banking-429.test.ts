/**
 * An Open Banking bank that answers 429 part-way through a sync (sandbox username `user_throttled`:
 * from its second sync on, the second account's transactions answer 429 with Retry-After 3600,
 * after the accounts list, the balances and the first account's transaction pages, which come one
 * to a page). Through the sandbox FAPI bank Modelo with the official client: the sync is
 * rate-limited, not failed; the connection stays ok and says to wait; and the provider call log
 * shows that no call to the bank started after the 429 was answered (SPEC §10).
 */
import { describe, expect, it } from 'vitest';
import { call } from '../helpers/api.ts';
import { serverWithClient } from '../helpers/fixture.ts';
import { connect, sandbox } from '../helpers/moneyhub.ts';
import { ADMIN_TOKEN } from '../helpers/server.ts';
import { MODELO_ID } from '../syncs/scenario.ts';

interface CallJson {
  at: string;
  syncId: string | null;
  method: string;
  endpoint: string;
  status: number | null;
  latencyMs: number;
  errorKind: string | null;
}

describe('an Open Banking bank that answers 429 part-way through a sync (user_throttled)', () => {
  const env = serverWithClient();

  it('ends the sync rate-limited, keeps the connection ok with remediation wait, and sends nothing to the bank after the 429', async () => {
    const { userId } = await env.mh.registerUser({ clientUserId: 'ob-429' });
    const { connectionId } = await connect(env.mh, userId, MODELO_ID, 'user_throttled');
    // The nightly sync is the bank's second; it reads a week back, one transaction to a page.
    await sandbox(env.ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT18H' });
    const run = await sandbox(env.ts.baseUrl, 'POST', '/sandbox/scheduler/run');
    expect(run.json.ran).toBe(1);

    const syncs = (await env.mh.getConnectionSyncs({ userId, connectionId })).data as unknown as { id: string; fetchStatus: string }[];
    expect(syncs.map((s) => s.fetchStatus)).toEqual(['rate-limited', 'success']);
    const { data } = await env.mh.getUserConnections({ userId });
    const c = data.find((x) => x.id === connectionId) as unknown as { status: string; rateLimitedUntil?: string; remediation: { action: string } } | undefined;
    expect(c?.status).toBe('ok');
    expect(c?.remediation.action).toBe('wait');
    expect(typeof c?.rateLimitedUntil).toBe('string');

    const res = await call(env.ts.baseUrl, 'GET', `/admin/api/provider-calls?${new URLSearchParams({ connectionId, limit: '500' }).toString()}`, { token: ADMIN_TOKEN });
    expect(res.status).toBe(200);
    const calls = (res.body as { data: CallJson[] }).data.filter((x) => x.syncId === syncs[0]?.id);
    // Part-way: the bank answered the accounts list and balances of this sync before its 429.
    expect(calls.some((x) => x.endpoint === '/accounts' && x.status === 200)).toBe(true);
    expect(calls.some((x) => x.endpoint === '/accounts/{accountId}/balances' && x.status === 200)).toBe(true);
    const limited = calls.filter((x) => x.status === 429);
    expect(limited).toHaveLength(1);
    expect(limited[0]).toMatchObject({ method: 'GET', endpoint: '/accounts/{accountId}/transactions', errorKind: 'rate_limited' });
    // Calls already under way when the 429 came may finish; none may start after it was answered.
    // `at` is the start (whole ms) and latencyMs is rounded: 1 ms of slack for the rounding.
    const answeredAt = Date.parse(limited[0]?.at ?? '') + (limited[0]?.latencyMs ?? 0);
    const startedAfter = calls.filter((x) => Date.parse(x.at) > answeredAt + 1);
    expect(startedAfter).toEqual([]);
  });
});
