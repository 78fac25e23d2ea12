import { describe, expect, it } from 'vitest';
import { serverWithClient } from '../helpers/fixture.ts';
import { atRedirect } from '../helpers/moneyhub.ts';
import { Browser } from '../helpers/browser.ts';

describe('journey pages answered twice', () => {
  const env = serverWithClient();

  it('a double-submitted credentials form creates one connection, and the second answer says so', async () => {
    const aviva = ((await env.mh.listConnections()) as { id: string; name: string }[]).find((c) => c.name === 'Aviva');
    const { userId } = await env.mh.registerUser({ clientUserId: 'double' });
    const url = await env.mh.getAuthorizeUrlForCreatedUser({ bankId: aviva?.id ?? '', userId, state: 's', nonce: 'n' });
    const browser = new Browser();
    const consent = await browser.follow(url, atRedirect);
    const form = await browser.submit(consent, {}, { button: 'allow', stopAt: atRedirect });
    expect(form.html).toContain('name="password"');
    const [a, b] = await Promise.all([
      browser.submit(form, { username: 'user_ok', password: 'x' }, { stopAt: atRedirect }),
      browser.submit(form, { username: 'user_ok', password: 'x' }, { stopAt: atRedirect }),
    ]);
    const statuses = [a, b].map((p) => (p.location !== null && atRedirect(p.location) ? 'redirected' : p.status));
    expect(statuses.sort()).toEqual([400, 'redirected'].sort());
    expect((await env.mh.getUserConnections({ userId })).data).toHaveLength(1);
  });
});

describe('a reauth while a sync with the old grant is running', () => {
  const env = serverWithClient();

  it('keeps the new grant: the old run is superseded and a fresh sync runs with the new consent', async () => {
    const nationwide = ((await env.mh.listConnections()) as { id: string; name: string }[]).find((c) => c.name === 'Nationwide Open Banking');
    const { userId } = await env.mh.registerUser({ clientUserId: 'reauth-race' });
    const { connect, runJourney, sandbox } = await import('../helpers/moneyhub.ts');
    const { connectionId } = await connect(env.mh, userId, nationwide?.id ?? '', 'user_ok');
    await sandbox(env.ts.baseUrl, 'POST', `/sandbox/connections/${encodeURIComponent(connectionId)}/behaviour`, { username: 'user_slow' });
    const slowSync = env.mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.2' });
    for (let i = 0; i < 50; i += 1) {
      const r = await env.ts.testDb.db.query(`select 1 from syncs where connection_id = $1 and state = 'running'`, [connectionId]);
      if (r.rowCount > 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const url = await env.mh.getReauthAuthorizeUrlForCreatedUser({ userId, connectionId, state: 'r', nonce: 'n' });
    const callback = await runJourney(url, 'user_ok');
    expect(callback.get('error')).toBeNull();
    await slowSync;
    const history = (await env.mh.getConnectionSyncs({ userId, connectionId })).data as unknown as { fetchStatus: string; errorDetail: string | null }[];
    expect(history[0]?.fetchStatus).toBe('success');
    expect(history[1]?.errorDetail ?? '').toMatch(/Superseded/);
    // The stored grant is the new one: later syncs keep working.
    expect((await env.mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.2' })).data.status).toBe('ok');
    const c = (await env.mh.getUserConnections({ userId })).data[0];
    expect(c?.status).toBe('ok');
  }, 60_000);
});
