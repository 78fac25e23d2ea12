import { it } from 'vitest';
import { goCardlessEntry } from '../helpers/gocardless.ts';
import { connect, officialClient } from '../helpers/moneyhub.ts';
import { startTestServer } from '../helpers/server.ts';
it('debug', async () => {
  const ts = await startTestServer({}, { providers: (urls) => [goCardlessEntry(urls, { name: 'GC' })] });
  try {
    const { mh } = await officialClient(ts.baseUrl, 'client_secret_basic');
    const id = ts.server.catalog.all().find((p) => p.name === 'GC')?.id ?? '';
    const { userId } = await mh.registerUser({ clientUserId: 'x' });
    const { connectionId } = await connect(mh, userId, id, 'user_ok');
    console.log(JSON.stringify((await mh.getConnectionSyncs({ userId, connectionId })).data, null, 1));
    console.log(JSON.stringify((await ts.testDb.db.query('select * from sandbox_gc_calls')).rows));
  } finally { await ts.stop(); }
}, 60000);
