import { describe, expect, it } from 'vitest';
import { serverWithClient } from '../helpers/fixture.ts';
import { connect, sandbox } from '../helpers/moneyhub.ts';

const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';

describe('scheduled syncs with the sandbox clock', () => {
  const env = serverWithClient();

  it('runs four unattended syncs a day for an Open Banking connection', async () => {
    const { userId } = await env.mh.registerUser({ clientUserId: 'u' });
    const { connectionId } = await connect(env.mh, userId, MODELO_ID, 'user_ok');
    const counts: number[] = [];
    for (let h = 0; h < 24; h += 3) {
      await sandbox(env.ts.baseUrl, 'POST', '/sandbox/clock', { advance: 'PT3H' });
      const run = await sandbox(env.ts.baseUrl, 'POST', '/sandbox/scheduler/run');
      counts.push(run.json.ran as number);
    }
    expect(counts.reduce((a, b) => a + b, 0)).toBe(4);
    const syncs = await env.mh.getConnectionSyncs({ userId, connectionId });
    expect(syncs.data.filter((s) => s.action === 'auto-update' && s.method === 'UPDATE')).toHaveLength(4);
    const c = (await env.mh.getUserConnections({ userId })).data[0] as unknown as Record<string, unknown>;
    expect(c.status).toBe('ok');
    expect(c.syncBudget).toMatchObject({ remaining: 0 });
  });
});
