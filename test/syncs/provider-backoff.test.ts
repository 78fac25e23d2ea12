import { describe, expect, it } from 'vitest';
import { serverWithClient } from '../helpers/fixture.ts';
import { connect, sandbox } from '../helpers/moneyhub.ts';

const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';

describe('back-off for a failing provider', () => {
  const env = serverWithClient();

  it('schedules no syncs for an hour to a provider that failed most syncs in the last hour, then resumes', async () => {
    const { userId } = await env.mh.registerUser({ clientUserId: 'backoff' });
    const { connectionId } = await connect(env.mh, userId, MODELO_ID, 'user_ok');
    const clock = await sandbox(env.ts.baseUrl, 'GET', '/sandbox/clock');
    const outageEnd = new Date(Date.parse(clock.json.now as string) + 6 * 3_600_000 + 5 * 60_000);
    await sandbox(env.ts.baseUrl, 'POST', `/sandbox/providers/${MODELO_ID}/outage`, { until: outageEnd.toISOString() });
    await sandbox(env.ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT5H30M' });
    for (let i = 0; i < 10; i += 1) {
      expect((await env.mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.7' })).data.status).toBe('error');
    }
    // The outage is over and the connection's scheduled sync is due, but the provider failed 10 of 10 syncs this hour.
    await sandbox(env.ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT40M' });
    const held = await sandbox(env.ts.baseUrl, 'POST', '/sandbox/scheduler/run');
    expect(held.json.ran).toBe(0);
    const c = (await env.mh.getUserConnections({ userId })).data[0] as unknown as { nextSyncAt: string; status: string; error: string };
    const now = Date.parse(((await sandbox(env.ts.baseUrl, 'GET', '/sandbox/clock')).json.now as string));
    expect(Date.parse(c.nextSyncAt) - now).toBeGreaterThan(55 * 60_000);
    expect(c).toMatchObject({ status: 'error', error: 'sync_error' });

    await sandbox(env.ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT1H' });
    const resumed = await sandbox(env.ts.baseUrl, 'POST', '/sandbox/scheduler/run');
    expect(resumed.json.ran).toBe(1);
    expect(((await env.mh.getUserConnections({ userId })).data[0] as unknown as { status: string }).status).toBe('ok');
  });
});
