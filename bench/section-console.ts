/**
 * Section `console`: the operator console's queries at scale. A database with 1,000,000
 * connections (their users spread over 100 API clients) and 20,000,000 provider calls over 14 days
 * (× BENCH_SCALE), seeded with SQL (generate_series; the call log's indexes are built after the
 * rows, as a restore would), and its hourly rollup for 30 days. A Mooring API process then answers
 * the admin API one request at a time (no concurrency: this is the latency an operator sees), with
 * varied parameters; p50/p95 of each. Then a second API process that records every statement it sends
 * (bench/variants.ts `trace`) answers each request once more, and each SELECT it ran is EXPLAINed
 * (ANALYZE, BUFFERS) with the parameters it ran with: the console's own queries included.
 *
 * The console's own routes (search, connection detail) are measured when the build has them
 * (BENCH_CONSOLE_SEARCH_PATH, BENCH_CONSOLE_CONNECTION_PATH; a route that answers 404 is reported
 * as absent, and the provider call list of one connection stands for the detail).
 */
import type pg from 'pg';
import { sandboxCatalog } from '../src/providers/catalog.ts';
import { hourOf, LATENCY_BUCKETS_MS } from '../src/provider-calls/rollup.ts';
import { dropDatabase, environmentLine, envNum, fmtInt, fmtMs, freePort, freshDatabase, log, percentile, startChild, waitForQuiet, withClient, type Child } from './common.ts';
import type { QueryStat } from './ipc.ts';
import type { SectionResult } from './section-sync.ts';

export const CONSOLE_DB = 'mooring_bench_console';
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
const POOL = 10;
const SCALE = envNum('BENCH_SCALE', 1);
const CONNECTIONS = Math.max(100, Math.round(1_000_000 * SCALE));
const CALLS = Math.max(1000, Math.round(20_000_000 * SCALE));
const CLIENTS = 100;
const CONNECTIONS_PER_USER = 2;
const CALL_CHUNK = 1_000_000;
const RETENTION_DAYS = 14;
const ROLLUP_HOURS = 720;
const SAMPLES = envNum('BENCH_CONSOLE_SAMPLES', 200);
const SEARCH_PATH = process.env.BENCH_CONSOLE_SEARCH_PATH ?? '/admin/api/search?q={q}';
const CONNECTION_PATH = process.env.BENCH_CONSOLE_CONNECTION_PATH ?? '/admin/api/connections/{connectionId}';
/** The p95 every console query must stay under. */
const TARGET_P95_MS = 100;
const PROVIDERS = sandboxCatalog('http://unused').filter((e) => e.adapter === 'openbanking').map((e) => e.id);
const ENDPOINTS = ['/accounts', '/accounts/{accountId}/balances', '/accounts/{accountId}/transactions', '/as/token.oauth2'];

/** Ids shaped as Mooring makes them (`<provider>:<uuid>`, 24 hex digits), derived from the row number. */
const CONNECTION_UUID_PREFIX = '00000000-0000-4000-8000-';
const connectionId = (n: number): string => `${PROVIDERS[n % PROVIDERS.length] ?? ''}:${CONNECTION_UUID_PREFIX}${n.toString(16).padStart(12, '0')}`;
const userId = (n: number): string => Math.floor(n / CONNECTIONS_PER_USER).toString(16).padStart(24, '0');
/** Tables that grow with the deployment: a sequential scan of one of these is a finding (small ones, e.g. settings, are scanned by design). */
const BIG_TABLES = /Seq Scan on (provider_calls|connections|users|syncs|accounts|transactions|webhook_events|webhook_deliveries|connection_status_changes|journeys)\b/;

async function timed(label: string, fn: () => Promise<unknown>): Promise<void> {
  const t = performance.now();
  await fn();
  log(`  ${label} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

async function seed(c: pg.Client): Promise<void> {
  await timed(`${CLIENTS} API clients`, () => c.query(
    `insert into oidc_models (kind, id, payload)
     select 'Client', 'bench-client-' || g, jsonb_build_object('client_id', 'bench-client-' || g, 'client_name', 'Bench client ' || g)
     from generate_series(1, $1::int) g`,
    [CLIENTS],
  ));
  await timed(`${fmtInt(CONNECTIONS / CONNECTIONS_PER_USER)} users`, () => c.query(
    `insert into users (id, client_id, client_user_id, user_type, scopes, created_at, updated_at, last_accessed)
     select lpad(to_hex(g), 24, '0'), 'bench-client-' || (1 + g % $2::int), 'customer-' || g, 'test', 'user:read', now() - interval '90 days', now(), now()
     from generate_series(0, $1::int - 1) g`,
    [Math.ceil(CONNECTIONS / CONNECTIONS_PER_USER), CLIENTS],
  ));
  await timed(`${fmtInt(CONNECTIONS)} connections`, () => c.query(
    `insert into connections (id, user_id, provider_id, connected_on, last_updated, expires_at, user_consented_at, tpp_consent,
                              provider_ref, provider_grant, last_fetch_status, consecutive_failures, last_attempt_at, next_sync_at, created_at)
     select p || ':${CONNECTION_UUID_PREFIX}' || lpad(to_hex(g), 12, '0'), lpad(to_hex(g / ${CONNECTIONS_PER_USER}), 24, '0'), p, now() - interval '60 days', now() - interval '3 hours',
            now() + interval '30 days' + (g % 5000) * interval '1 hour', now() - interval '60 days', true, 'aac-bc' || g, '{"accessToken":"x"}',
            case when g % 20 = 0 then 'error' else 'success' end, 0, now() - interval '3 hours',
            now() + (g % 21600) * interval '1 second', now() - interval '60 days'
     from generate_series(0, $1::int - 1) g, lateral (select ($2::text[])[1 + g % array_length($2::text[], 1)] as p) x`,
    [CONNECTIONS, PROVIDERS],
  ));

  // What a connection's timeline also reads: its accounts, syncs (two each) and webhook events (one each).
  await timed(`${fmtInt(CONNECTIONS)} accounts`, () => c.query(
    `insert into accounts (id, connection_id, user_id, provider_account_id, account_name, type, account_type, currency,
                           balance_minor, balance_date, details, created_at, updated_at)
     select gen_random_uuid(), c.id, c.user_id, 'acc-1', 'Current account', 'cash:current', 'personal', 'GBP',
            123456, now() - interval '3 hours', '{}', c.created_at, now() - interval '3 hours'
     from connections c`,
  ));
  await timed(`${fmtInt(2 * CONNECTIONS)} syncs`, () => c.query(
    `insert into syncs (id, connection_id, user_id, provider_id, action, method, state, attended, fetch_status, created_at, fetched_at, finished_at, accounts)
     select gen_random_uuid(), c.id, c.user_id, c.provider_id, 'auto-update', 'UPDATE', 'done', false, c.last_fetch_status, t, t, t, '[]'
     from connections c cross join (values (now() - interval '9 hours'), (now() - interval '3 hours')) v(t)`,
  ));
  await timed(`${fmtInt(CONNECTIONS)} webhook events`, () => c.query(
    `insert into webhook_events (id, client_id, user_id, event_type, payload, dedupe_key, created_at, attempts, delivered_at)
     select gen_random_uuid(), u.client_id, c.user_id, 'syncCompleted', jsonb_build_object('connectionId', c.id, 'userId', c.user_id),
            'bench-' || c.id, now() - interval '3 hours', 1, now() - interval '3 hours'
     from connections c join users u on u.id = c.user_id`,
  ));
  await timed(`${fmtInt(CONNECTIONS)} webhook deliveries`, () => c.query(
    `insert into webhook_deliveries (id, event_id, at, status, response_code, duration_ms)
     select gen_random_uuid(), e.id, e.created_at, 'delivered', 200, 40 from webhook_events e`,
  ));
  await timed(`${fmtInt(CONNECTIONS)} connect journeys (history) and status changes`, async () => {
    await c.query(
      `insert into journey_history (uid, connection_id, client_id, kind, step, provider_id, created_at, updated_at)
       select 'bench-j-' || c.id, c.id, u.client_id, 'connect', 'done', c.provider_id, c.connected_on, c.connected_on
       from connections c join users u on u.id = c.user_id`,
    );
    await c.query(
      `insert into connection_status_changes (connection_id, at, from_state, to_state, remediation_action)
       select c.id, c.connected_on, null, 'ok::', 'none' from connections c`,
    );
  });
  // Live journeys (the purge keeps a day of them): a reauth for one connection in 256.
  await timed(`${fmtInt(Math.ceil(CONNECTIONS / 256))} live journeys`, () => c.query(
    `insert into journeys (uid, client_id, user_id, kind, scope, provider_id, connection_id, step, created_at, updated_at)
     select 'bench-live-' || c.id, u.client_id, c.user_id, 'reauth', 'openid', c.provider_id, c.id, 'done', now() - interval '2 hours', now() - interval '2 hours'
     from connections c join users u on u.id = c.user_id where right(c.id, 2) = '00'`,
  ));

  // The call log: rows first, indexes after (as a restore would build them); `at` rises with g over the retention window.
  const indexes = (await c.query<{ indexname: string; indexdef: string }>(
    "select indexname, indexdef from pg_indexes where tablename = 'provider_calls' and indexname <> 'provider_calls_pkey'",
  )).rows;
  for (const i of indexes) await c.query(`drop index ${i.indexname}`);
  const spanMs = RETENTION_DAYS * 86_400_000;
  const t = performance.now();
  for (let from = 0; from < CALLS; from += CALL_CHUNK) {
    const to = Math.min(CALLS, from + CALL_CHUNK) - 1;
    await c.query(
      `insert into provider_calls (at, provider_id, connection_id, sync_id, journey_id, method, endpoint, status, latency_ms, error_kind, interaction_id)
       select now() - ($2::bigint - g) * $3::float8 * interval '1 millisecond', ($5::text[])[1 + cn % array_length($5::text[], 1)],
              ($5::text[])[1 + cn % array_length($5::text[], 1)] || ':${CONNECTION_UUID_PREFIX}' || lpad(to_hex(cn), 12, '0'), gen_random_uuid(), null,
              case when g % 4 = 3 then 'POST' else 'GET' end, ($6::text[])[1 + g % 4],
              s, 20 + (g * 7919) % 480,
              case s when 200 then null when 429 then 'rate_limited' when 403 then 'credentials' else 'unavailable' end,
              gen_random_uuid()::text
         from generate_series($1::bigint, $7::bigint) g,
              lateral (select g % $4::bigint as cn, case when g % 53 = 0 then 429 when g % 97 = 0 then 503 when g % 89 = 0 then 403 else 200 end as s) x`,
      [from, CALLS, spanMs / CALLS, CONNECTIONS, PROVIDERS, ENDPOINTS, to],
    );
    log(`  provider calls: ${fmtInt(to + 1)} of ${fmtInt(CALLS)} (${((performance.now() - t) / 1000).toFixed(0)} s)`);
  }
  for (const i of indexes) await timed(`index ${i.indexname}`, () => c.query(i.indexdef));

  // The hourly rollup of 30 days (what the batch writer keeps): per provider and hour, calls by outcome with a histogram, syncs by outcome.
  const now = hourOf(new Date());
  const histogram = `{${LATENCY_BUCKETS_MS.map((_, i) => (i >= 3 && i <= 10 ? 40 * (11 - i) : 1)).join(',')},0}`;
  await timed(`rollup (${PROVIDERS.length} providers × ${ROLLUP_HOURS} hours)`, () => c.query(
    `insert into provider_call_hours (provider_id, hour, subject, outcome, n, latency_buckets)
     select p, $2::timestamptz - h * interval '1 hour', o.subject, o.outcome, o.n, case when o.subject = 'call' then $3::int[] end
       from unnest($1::text[]) p, generate_series(0, $4::int - 1) h,
            (values ('call', 'ok', 1100), ('call', 'rate_limited', 25), ('call', 'unavailable', 12), ('sync', 'success', 250), ('sync', 'rate_limited', 6), ('sync', 'credentials', 3)) o(subject, outcome, n)`,
    [PROVIDERS, now, histogram, ROLLUP_HOURS],
  ));
  await timed('vacuum analyze', () => c.query('vacuum analyze'));
}

interface Scenario {
  name: string;
  label: string;
  /** The path of request i (a console page when not under /admin/api/: sent with the session cookie). */
  path: (i: number) => string;
  /** A console HTML page (documentation only; request() tells by the path). */
  page?: boolean;
}

interface Timing {
  scenario: Scenario;
  p50: number;
  p95: number;
  max: number;
  absent: string | null;
  /** Each SELECT the request ran, with its plan. */
  plans: { sql: string; plan: string }[];
  /** No sequential scan in any plan (null: nothing explained). */
  indexOnly: boolean | null;
}

const pick = (i: number): number => (i * 7_368_787) % CONNECTIONS;
const provider = (i: number): string => PROVIDERS[i % PROVIDERS.length] ?? '';

function scenarios(cursorOf: (p: string) => string): Scenario[] {
  return [
    {
      name: 'search', label: 'Search (console: user id, connection id, client user id)',
      path: (i) => SEARCH_PATH.replace('{q}', encodeURIComponent(i % 2 === 0 ? userId(pick(i)) : connectionId(pick(i)))),
    },
    {
      name: 'connection', label: 'Connection detail (console)',
      path: (i) => CONNECTION_PATH.replace('{connectionId}', encodeURIComponent(connectionId(pick(i)))),
    },
    {
      name: 'page-search', label: 'Console page: search (signed in, HTML)', page: true,
      path: (i) => `/admin/search?q=${encodeURIComponent(i % 2 === 0 ? userId(pick(i)) : connectionId(pick(i)))}`,
    },
    {
      name: 'page-connection', label: 'Console page: connection with its timeline (HTML)', page: true,
      path: (i) => `/admin/connections/${encodeURIComponent(connectionId(pick(i)))}`,
    },
    {
      name: 'page-provider', label: 'Console page: provider (7-day health chart, failures, latency; HTML)', page: true,
      path: (i) => `/admin/providers/${provider(i)}`,
    },
    {
      name: 'calls-connection', label: 'Provider calls of one connection (newest 50)',
      path: (i) => `/admin/api/provider-calls?connectionId=${encodeURIComponent(connectionId(pick(i)))}&limit=50`,
    },
    {
      name: 'calls-provider', label: 'Provider calls of one provider (newest 50)',
      path: (i) => `/admin/api/provider-calls?providerId=${provider(i)}&limit=50`,
    },
    {
      name: 'calls-provider-next', label: 'Provider calls of one provider, a following page (cursor)',
      path: (i) => `/admin/api/provider-calls?providerId=${provider(i)}&limit=50&cursor=${cursorOf(provider(i))}`,
    },
    {
      name: 'calls-errors', label: 'Provider calls by error kind within a provider, last 24 h (rate_limited)',
      path: (i) => `/admin/api/provider-calls?providerId=${provider(i)}&errorKind=rate_limited&since=${new Date(Date.now() - 86_400_000).toISOString()}&limit=50`,
    },
    {
      name: 'calls-status', label: 'Provider calls by status within a provider (503)',
      path: (i) => `/admin/api/provider-calls?providerId=${provider(i)}&status=503&limit=50`,
    },
    {
      name: 'health', label: 'Provider health, 168 hourly buckets',
      path: (i) => `/admin/api/providers/${provider(i)}/health`,
    },
    {
      name: 'health-720', label: 'Provider health, 720 hourly buckets',
      path: (i) => `/admin/api/providers/${provider(i)}/health?hours=720`,
    },
  ];
}

/** Every SELECT the traced API process ran for one request (statements it counted since `before`), explained with its parameters. */
async function plansOf(c: pg.Client, traced: Child, path: string): Promise<{ sql: string; plan: string }[]> {
  const stats = async (): Promise<Map<string, QueryStat>> => {
    const r = await traced.ask({ type: 'queries' });
    return new Map(r.type === 'queries' ? r.stats.map((q) => [q.sql, q]) : []);
  };
  const before = await stats();
  const res = await request(traced, path);
  if (res.status !== 200) throw new Error(`the traced process answered ${res.status} to ${path}`);
  const ran = [...(await stats()).values()].filter((q) => q.count > (before.get(q.sql)?.count ?? 0) && /^\s*(select|with)\b/i.test(q.sql));
  const out: { sql: string; plan: string }[] = [];
  for (const q of ran) {
    const r = await c.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers, costs off) ${q.sql}`, q.params ?? []);
    out.push({ sql: q.sql, plan: r.rows.map((x) => x['QUERY PLAN']).join('\n') });
  }
  return out;
}

/** The console session cookie of a signed-in operator (pages), set once by signIn. */
let sessionCookie = '';

/** Signs in at /admin/login with the admin token, as the sign-in form does; the session lives in the database, so every API process accepts it. */
async function signIn(api: Child): Promise<void> {
  const origin = `http://127.0.0.1:${api.port}`;
  const res = await fetch(`${origin}/admin/login`, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin, 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
  });
  const cookie = res.headers.get('set-cookie')?.split(';')[0] ?? '';
  if (res.status !== 303 || cookie === '') throw new Error(`signing in to the console answered ${res.status}`);
  sessionCookie = cookie;
}

async function request(api: Child, path: string): Promise<{ status: number; body: unknown; ms: number }> {
  const t = performance.now();
  const page = !path.startsWith('/admin/api/');
  const res = await fetch(`http://127.0.0.1:${api.port}${path}`, { headers: page ? { cookie: sessionCookie } : { authorization: `Bearer ${ADMIN_TOKEN}` }, redirect: 'manual' });
  const body = page ? await res.text() : ((await res.json().catch(() => null)) as unknown);
  return { status: res.status, body, ms: performance.now() - t };
}

export async function runConsoleSection(): Promise<SectionResult> {
  log(`(re)creating database ${CONSOLE_DB}`);
  const url = await freshDatabase(CONSOLE_DB);
  const port = await freePort();
  const api = await startChild('Mooring API (console)', 'mooring-server.ts', [url, String(port), ADMIN_TOKEN, String(POOL)], port);
  let traced: Child | null = null;
  try {
    const seedStart = performance.now();
    log(`seeding ${fmtInt(CONNECTIONS)} connections and ${fmtInt(CALLS)} provider calls (BENCH_SCALE ${SCALE})`);
    await withClient(url, seed);
    const seedSeconds = (performance.now() - seedStart) / 1000;

    // A cursor deep enough to be a real "next page": the 50th call of each provider.
    await signIn(api);
    const cursors = new Map<string, string>();
    for (const p of PROVIDERS) {
      const r = await request(api, `/admin/api/provider-calls?providerId=${p}&limit=50`);
      cursors.set(p, ((r.body as { meta?: { nextCursor?: string | null } } | null)?.meta?.nextCursor) ?? '');
    }
    const tracedPort = await freePort();
    traced = await startChild('Mooring API (console, statements traced)', 'mooring-server.ts', [url, String(tracedPort), ADMIN_TOKEN, String(POOL), 'trace'], tracedPort);
    const tracer = traced;
    await waitForQuiet();
    const timings: Timing[] = [];
    await withClient(url, async (c) => {
      for (const s of scenarios((p) => cursors.get(p) ?? '')) {
        const probe = await request(api, s.path(0));
        if (probe.status !== 200) {
          log(`  ${s.name}: ${s.path(0)} answered ${probe.status}; not measured`);
          timings.push({ scenario: s, p50: Number.NaN, p95: Number.NaN, max: Number.NaN, absent: `answered ${probe.status} (not in this build?)`, plans: [], indexOnly: null });
          continue;
        }
        const ms: number[] = [];
        for (let i = 1; i <= SAMPLES; i += 1) {
          const r = await request(api, s.path(i));
          if (r.status !== 200) throw new Error(`${s.name}: ${s.path(i)} answered ${r.status}: ${JSON.stringify(r.body)}`);
          ms.push(r.ms);
        }
        ms.sort((a, b) => a - b);
        const plans = await plansOf(c, tracer, s.path(1));
        const t: Timing = {
          scenario: s, p50: percentile(ms, 50), p95: percentile(ms, 95), max: ms[ms.length - 1] ?? Number.NaN, absent: null, plans,
          indexOnly: plans.length === 0 ? null : plans.every((x) => !BIG_TABLES.test(x.plan)),
        };
        const scans = t.indexOnly === null ? ' (no statement)' : t.indexOnly ? ' (no sequential scan of a large table)' : ' (SEQUENTIAL SCAN of a large table)';
        log(`  ${s.name.padEnd(20)} p50 ${fmtMs(t.p50)}, p95 ${fmtMs(t.p95)}, max ${fmtMs(t.max)}; ${plans.length} statement(s)${scans}`);
        timings.push(t);
      }
    });
    return render(timings, seedSeconds);
  } finally {
    await traced?.stop();
    await api.stop();
    await dropDatabase(CONSOLE_DB);
  }
}

async function render(timings: Timing[], seedSeconds: number): Promise<SectionResult> {
  const measured = timings.filter((t) => t.absent === null);
  const worst = measured.reduce((a, t) => Math.max(a, t.p95), 0);
  const verdict = worst < TARGET_P95_MS ? 'met' : 'NOT met';
  const rows = timings.map((t) => (t.absent !== null
    ? `| ${t.scenario.label} | n/a | n/a | n/a | ${t.absent} |`
    : `| ${t.scenario.label} | ${fmtMs(t.p50)} | **${fmtMs(t.p95)}** | ${fmtMs(t.max)} | ${t.indexOnly === null ? '' : t.indexOnly ? 'indexed' : '**sequential scan of a large table**'} |`));
  const plans = timings.filter((t) => t.plans.length > 0).map((t) =>
    `#### ${t.scenario.label}\n\n${t.plans.map((x) => `\`\`\`sql\n${x.sql}\n\`\`\`\n\`\`\`\n${x.plan}\n\`\`\``).join('\n\n')}`);
  const markdown = `## Operator console queries at scale

_Measured ${new Date().toISOString()} on ${await environmentLine()}; re-run this section alone with \`BENCH_ONLY=console\`${SCALE === 1 ? '' : ` (this run: BENCH_SCALE=${SCALE})`}._

${fmtInt(CONNECTIONS)} connections (${fmtInt(Math.ceil(CONNECTIONS / CONNECTIONS_PER_USER))} users of ${CLIENTS} API clients; an account, two syncs and a
webhook event each) and
**${fmtInt(CALLS)} provider calls** over ${RETENTION_DAYS} days, seeded with SQL in ${seedSeconds.toFixed(0)} s; the hourly rollup holds
${ROLLUP_HOURS} hours of ${PROVIDERS.length} providers. One request at a time from the bench to a Mooring API process (pool ${POOL}),
${SAMPLES} requests per row with varied connections and providers, after one unmeasured probe. Then a second API
process that records every statement it sends answered each request once more; every SELECT it ran is explained below
with the parameters it ran with.

| Console page or admin API request | p50 | p95 | max | Plan |
|---|---:|---:|---:|---|
${rows.join('\n')}

**Worst p95: ${fmtMs(worst)}** (target < ${TARGET_P95_MS} ms: ${verdict}).

Health answers from \`provider_call_hours\` (one row per provider, hour, subject and outcome, with a latency histogram
filled additively by the writers' batches): at most ${ROLLUP_HOURS} hours × a few outcomes per request, whatever the number of
calls; p50/p95 are read from the merged histogram (bucket resolution). The call lists walk an index newest first
(\`(connection_id, at desc, id desc)\`, \`(provider_id, at desc, id desc)\`, with \`status\` or \`error_kind\` after \`provider_id\`)
and stop after the page (keyset cursor on \`(at, id)\`).

### Query plans (EXPLAIN ANALYZE, BUFFERS)

${plans.join('\n\n')}
`;
  return {
    markdown,
    summary: `Console: worst p95 ${fmtMs(worst)} over ${measured.length} admin requests with ${fmtInt(CALLS)} provider calls (target < ${TARGET_P95_MS} ms: ${verdict})`,
  };
}
