/** The console's pages as HTML, from data (no I/O). Every text from data is escaped. */
import type { OverviewJson } from '../admin/routes.ts';
import type { RemediationAction } from '../connections/status.ts';
import { escapeHtml } from '../web/html.ts';
import { healthChartSvg, type ChartBucket } from './chart.ts';
import { actionForm, csrfField, isoText, link, renderConsolePage, table } from './layout.ts';
import type { ConnectionDetail, SearchResult } from './service.ts';
import { decodeState, stateInWords, TIMELINE_KINDS, type TimelineEntry, type TimelineKind } from './timeline.ts';
import type { TimelineQuery } from './routes.ts';

const e = escapeHtml;
const connectionHref = (id: string): string => `/admin/connections/${encodeURIComponent(id)}`;
const providerHref = (id: string): string => `/admin/providers/${encodeURIComponent(id)}`;
const clientHref = (id: string): string => `/admin/clients/${encodeURIComponent(id)}`;
const searchHref = (q: string): string => `/admin/search?${new URLSearchParams({ q }).toString()}`;
const stateText = (s: string | null): string => (s === null ? 'not yet known' : stateInWords(decodeState(s)));

/** What the remediation action asks, in words. */
export const REMEDIATION_IN_WORDS: Record<RemediationAction, string> = {
  none: 'Nothing to do: the connection works.',
  wait: 'Wait: Mooring retries on its own.',
  sync: 'Sync again.',
  reauth: 'The user must re-authenticate at the provider (a reauth journey).',
  reconsent: 'The user must renew their consent to the app (a reconsent journey).',
  refresh: 'The user must refresh their credentials (a refresh journey).',
  reconnect: 'The user must connect a different provider.',
};

const remediationInWords = (action: string): string => (Object.hasOwn(REMEDIATION_IN_WORDS, action) ? REMEDIATION_IN_WORDS[action as RemediationAction] : action);

const KIND_NAMES: Record<TimelineKind, string> = {
  journey: 'Journey', sync: 'Sync', status_change: 'Status change', provider_call: 'Provider call', webhook_event: 'Webhook event',
};

/** The outcome of a console action, shown once on the page it returns to (a closed set: nothing from the request is echoed). */
export const NOTICES = {
  'sync-ok': 'The sync succeeded.',
  'sync-error': 'The sync ran and failed: see the timeline.',
  'sync-budget': 'Not synced: the unattended budget of this connection is used up (see the budget above).',
  'sync-rate-limited': 'Not synced: the provider rate-limited this connection (see “Rate-limited until”).',
  'sync-impossible': 'Not synced: the consent has expired or the provider was removed.',
  replayed: 'The webhook event was queued for delivery again; its attempt appears under the event.',
  'no-webhook': 'Not replayed: the client has no webhook URL.',
  behaviour: 'The sandbox behaviour of this connection was switched.',
  clock: 'The sandbox clock moved.',
  'clock-bad': 'The clock did not move: give a positive ISO 8601 duration (P1D, PT6H) at most ten years ahead.',
  scheduler: 'Due syncs, time-driven events and webhook deliveries have run.',
} as const;
export type NoticeCode = keyof typeof NOTICES;
export const isNotice = (s: string | undefined): s is NoticeCode => s !== undefined && Object.hasOwn(NOTICES, s);
const notice = (code: NoticeCode | null): string => (code === null ? '' : `<p class="notice" role="status">${e(NOTICES[code])}</p>`);

export function signInPage(): string {
  return renderConsolePage({
    title: 'Operator sign-in', csrf: null,
    body: `<form method="post" action="/admin/login"><p><label for="t">Admin token</label><br><input id="t" type="password" name="token" autocomplete="off" size="48"></p><button type="submit">Sign in</button></form>
<p class="muted">The token is MOORING_ADMIN_TOKEN, or the one printed at first start and kept in the data directory.</p>`,
  });
}

export function overviewPage(o: OverviewJson, csrf: string): string {
  const attention = o.attention.length === 0
    ? '<p class="ok">No connection is in error.</p>'
    : table(['State', 'Provider', 'Connections'], o.attention.map((g) => [
      e(stateText(g.state)), link(providerHref(g.providerId), g.providerName),
      link(`/admin/errors?${new URLSearchParams({ state: g.state, provider: g.providerId }).toString()}`, `${g.connections} connection${g.connections === 1 ? '' : 's'}`),
    ]));
  const providers = table(['Provider', 'Type', 'Sync health', 'Connections', 'Syncs (1 h)', 'Failures (1 h)'], o.providers.map((p) => [
    link(providerHref(p.id), p.name), e(p.type), e(p.sync), String(p.connections), String(p.syncsLastHour), String(p.failuresLastHour),
  ]));
  const clients = table(['Name', 'client_id', 'Users', 'Webhook'], o.clients.map((c) => [link(clientHref(c.clientId), c.name), `<code>${e(c.clientId)}</code>`, String(c.users), e(c.webhookUrl ?? '—')]));
  const statuses = Object.entries(o.connections.byLastFetchStatus).map(([k, v]) => `${e(k)}: ${v}`).join(', ');
  return renderConsolePage({
    title: 'Mooring operations', csrf,
    body: `<p class="muted">Domain time ${e(o.now)}</p>
<h2>Connections needing attention</h2><p class="muted">Connections in error or never (as last told to their client), by state and provider.</p>${attention}
<h2>Providers</h2>${providers}
<h2>Connections</h2><p>${o.connections.total} in all; by last sync: ${statuses || 'none yet'}; consent expired: ${o.connections.consentExpired}</p>
<h2>Work in flight</h2><p>Syncs queued: ${o.syncs.queued}, running: ${o.syncs.running}. Webhook events awaiting delivery: ${o.webhooks.pending}, abandoned: ${o.webhooks.abandoned}.</p>
<h2>API clients</h2>${clients}`,
  });
}

export function errorGroupPage(state: string, providerId: string, providerName: string, members: { id: string; user_id: string; client_id: string; client_user_id: string | null; last_attempt_at: Date | null }[], nextAfter: string | null, csrf: string): string {
  const rows = members.map((m) => [link(connectionHref(m.id), m.id), link(searchHref(m.user_id), m.client_user_id ?? m.user_id), link(clientHref(m.client_id), m.client_id), e(isoText(m.last_attempt_at))]);
  const more = nextAfter === null ? '' : `<p>${link(`/admin/errors?${new URLSearchParams({ state, provider: providerId, after: nextAfter }).toString()}`, 'More connections')}</p>`;
  return renderConsolePage({
    title: `${stateText(state)} at ${providerName}`, csrf,
    body: `${rows.length === 0 ? '<p>No connection is in this state now.</p>' : table(['Connection', 'User (clientUserId)', 'Client', 'Last attempt'], rows)}${more}`,
  });
}

export function searchPage(q: string, r: SearchResult | null, problem: string | null, csrf: string): string {
  if (r === null) return renderConsolePage({ title: 'Search', csrf, q, body: `<p class="error">${e(problem ?? 'Type something to search for.')}</p>` });
  const users = r.users.length === 0 ? '<p class="muted">No user.</p>'
    : table(['User id', 'clientUserId', 'Client', 'Created', 'Match'], r.users.map((u) => [`<code>${e(u.userId)}</code>`, e(u.clientUserId ?? '—'), link(clientHref(u.clientId), u.clientId), e(u.createdAt), e(u.match)]));
  const connections = r.connections.length === 0 ? '<p class="muted">No connection.</p>'
    : table(['Connection', 'User', 'Provider', 'State'], r.connections.map((c) => [link(connectionHref(c.connectionId), c.connectionId), `<code>${e(c.userId)}</code>`, link(providerHref(c.providerId), c.providerName), e(stateText(c.state))]));
  const clients = r.clients.length === 0 ? '<p class="muted">No API client.</p>'
    : table(['Client', 'client_id', 'Match'], r.clients.map((c) => [link(clientHref(c.clientId), c.name ?? c.clientId), `<code>${e(c.clientId)}</code>`, e(c.match)]));
  return renderConsolePage({ title: `Search: ${q}`, csrf, q, body: `<h2>Connections</h2>${connections}<h2>Users</h2>${users}<h2>API clients</h2>${clients}` });
}

function entryDetail(entry: TimelineEntry, csrf: string, canReplay: boolean): string {
  const d = entry.detail;
  if (entry.kind === 'webhook_event') {
    const deliveries = (d.deliveries as { at: string; status: string; responseCode: number | null; error: string | null }[]);
    const list = deliveries.length === 0 ? '<span class="muted">No delivery attempt yet.</span>'
      : `<ol>${deliveries.map((x) => `<li>${e(x.at)}: ${e(x.status)}${x.responseCode === null ? '' : ` (${x.responseCode})`}${x.error === null ? '' : ` — ${e(x.error)}`}</li>`).join('')}</ol>`;
    const replay = canReplay ? actionForm(`/admin/webhook-events/${encodeURIComponent(entry.id)}/replay`, `Replay ${String(d.eventType)}`, csrf, {}, 'secondary') : '';
    return `<code>${e(entry.id)}</code><br>${list}${replay}`;
  }
  if (entry.kind === 'sync') return `<code>${e(entry.id)}</code>${d.errorDetail === null ? '' : `<br><span class="error">${e(String(d.errorDetail))}</span>`}`;
  if (entry.kind === 'provider_call') {
    const ids = [d.syncId === null ? '' : `sync ${String(d.syncId)}`, d.journeyId === null ? '' : `journey ${String(d.journeyId)}`, d.interactionId === null ? '' : `interaction ${String(d.interactionId)}`].filter((x) => x !== '');
    return `${d.errorKind === null ? '' : `<span class="error">${e(String(d.errorKind))}</span> `}<span class="muted">${e(ids.join(', '))}</span>`;
  }
  if (entry.kind === 'status_change') return `<span class="muted">remediation: ${e(String(d.remediationAction))}</span>`;
  return `<span class="muted">${e(String(d.journeyKind))}, step ${e(String(d.step))}</span>`;
}

export interface ConnectionPageInput {
  detail: ConnectionDetail;
  query: TimelineQuery;
  pageUrl: (cursor: TimelineQuery['cursor']) => string;
  csrf: string;
  notice: NoticeCode | null;
  /** The sandbox's behaviours (sandbox mode only), for the controls. */
  sandboxUsernames: readonly string[] | null;
  hasWebhook: boolean;
}

export function connectionPage(p: ConnectionPageInput): string {
  const { connection: c, user, client, provider, timeline } = p.detail;
  const state = stateInWords({ status: c.status, error: c.error, extendedStatus: c.extendedStatus });
  const facts: [string, string][] = [
    ['State', `<strong class="${c.status === 'ok' ? 'ok' : 'error'}">${e(state)}</strong>`],
    ['What to do', `${e(remediationInWords(c.remediation.action))} <span class="muted">(${e(c.remediation.action)})</span><br>${e(c.remediation.reason)}${c.remediation.retryAfter === undefined ? '' : `<br>Retry after ${e(c.remediation.retryAfter)}`}`],
    ['Provider', `${link(providerHref(provider.id), provider.name)} <span class="muted">(${e(provider.type)})</span>`],
    ['User', `${link(searchHref(user.userId), user.clientUserId ?? user.userId)} <code>${e(user.userId)}</code>`],
    ['Client', link(clientHref(client.clientId), client.name ?? client.clientId)],
    ['Connected on', e(c.connectedOn)],
    ['Data as of (lastUpdated)', e(isoText(c.lastUpdated))],
    ['Last attempt', e(isoText(c.lastAttemptAt))],
    ['Next sync', e(isoText(c.nextSyncAt))],
    ['Consent expires', e(isoText(c.expiresAt))],
    ['Unattended syncs left', `${c.syncBudget.remaining}${c.syncBudget.resetsAt === null ? '' : ` (one more at ${e(c.syncBudget.resetsAt)})`}`],
    ['Rate-limited until', e(isoText(c.rateLimitedUntil))],
  ];
  const sandbox = p.sandboxUsernames === null ? '' : `<h2>Sandbox controls</h2><div class="actions">
<form method="post" action="${e(`${connectionHref(c.id)}/behaviour`)}">${csrfField(p.csrf)}<div><label for="behaviour">Behaviour of this connection</label><br><select id="behaviour" name="username">${p.sandboxUsernames.map((u) => `<option>${e(u)}</option>`).join('')}</select></div><button type="submit">Switch behaviour</button></form>
<form method="post" action="/admin/sandbox/clock">${csrfField(p.csrf)}<input type="hidden" name="back" value="${e(c.id)}"><div><label for="advance">Move the clock by (ISO 8601)</label><br><input id="advance" name="advance" value="P1D" size="10" maxlength="100"></div><button type="submit">Move the clock</button></form>
${actionForm('/admin/sandbox/run', 'Run due syncs', p.csrf, { back: c.id })}</div>`;
  const kindOptions = [`<option value=""${p.query.kinds.length === TIMELINE_KINDS.length ? ' selected' : ''}>Everything</option>`,
    ...TIMELINE_KINDS.map((k) => `<option value="${k}"${p.query.kinds.length === 1 && p.query.kinds[0] === k ? ' selected' : ''}>${e(KIND_NAMES[k])}s</option>`)].join('');
  const rows = timeline.entries.map((t) => [e(t.at.toISOString()), e(KIND_NAMES[t.kind]), e(t.summary), entryDetail(t, p.csrf, p.hasWebhook)]);
  const paging = [p.query.cursor === null ? '' : link(p.pageUrl(null), 'Newest entries'), timeline.next === null ? '' : link(p.pageUrl(timeline.next), 'Older entries')].filter((x) => x !== '').join(' · ');
  return renderConsolePage({
    title: `${provider.name} connection`, csrf: p.csrf,
    body: `${notice(p.notice)}<p class="muted"><code>${e(c.id)}</code></p>
<dl class="facts">${facts.map(([k, v]) => `<dt>${e(k)}</dt><dd>${v}</dd>`).join('')}</dl>
<h2>Actions</h2><div class="actions">${actionForm(`${connectionHref(c.id)}/sync`, 'Sync now', p.csrf)}<span class="muted">An unattended sync, within the budget above.</span></div>
${sandbox}
<h2>Timeline</h2>
<form method="get" action="${e(connectionHref(c.id))}" class="actions"><div><label for="kind">Show</label><br><select id="kind" name="kind">${kindOptions}</select></div><button type="submit">Filter</button></form>
${rows.length === 0 ? '<p>Nothing recorded.</p>' : table(['Time', 'Kind', 'What happened', 'Details'], rows)}
<p>${paging}</p>`,
  });
}

export interface ProviderPageInput {
  provider: { id: string; name: string; type: string };
  buckets: (ChartBucket & { failures: Record<string, number>; p50LatencyMs: number | null })[];
  failures: { fetch_status: string; error_detail: string | null; n: number; last: Date }[];
  csrf: string;
}

export function providerPage(p: ProviderPageInput): string {
  const total = p.buckets.reduce((a, b) => a + b.syncs, 0);
  const ok = p.buckets.reduce((a, b) => a + b.successes, 0);
  const byKind = new Map<string, number>();
  for (const b of p.buckets) for (const [k, n] of Object.entries(b.failures)) byKind.set(k, (byKind.get(k) ?? 0) + n);
  const recent = p.buckets.slice(-24);
  const p95s = recent.map((b) => b.p95LatencyMs).filter((x): x is number => x !== null);
  const p50s = recent.map((b) => b.p50LatencyMs).filter((x): x is number => x !== null);
  const failures = p.failures.length === 0 ? '<p class="ok">No failed sync in the last 24 hours.</p>'
    : table(['Outcome', 'Error', 'Syncs', 'Last'], p.failures.map((f) => [e(f.fetch_status), e(f.error_detail ?? '—'), String(f.n), e(f.last.toISOString())]));
  return renderConsolePage({
    title: p.provider.name, csrf: p.csrf,
    body: `<p class="muted"><code>${e(p.provider.id)}</code> · ${e(p.provider.type)}</p>
<h2>Health over the last 7 days</h2>
<p>${total} syncs, ${ok} succeeded${total === 0 ? '' : ` (${Math.round((ok / total) * 1000) / 10}%)`}. Failures by kind: ${byKind.size === 0 ? 'none' : [...byKind].map(([k, n]) => `${e(k)}: ${n}`).join(', ')}.</p>
${healthChartSvg(p.buckets, `Syncs per hour at ${p.provider.name} (green: succeeded, red: failed), p95 latency (blue)`)}
<h2>Latency (last 24 hours)</h2><p>p50 up to ${p50s.length === 0 ? '—' : `${Math.max(...p50s)} ms`}, p95 up to ${p95s.length === 0 ? '—' : `${Math.max(...p95s)} ms`} (per hour).</p>
<h2>Recent failures (24 hours, the latest 10,000 at most), by error</h2>${failures}`,
  });
}

export interface ClientPageInput {
  client: { id: string; name: string | null };
  users: number;
  byState: { state: string | null; n: number }[];
  recentUsers: { id: string; client_user_id: string | null; created_at: Date }[];
  webhook: {
    url: string | null; attempts: number; delivered: number; pending: number; oldestPending: Date | null; abandoned: number;
    lastFailure: { at: Date; response_code: number | null; error: string | null; event_id: string; event_type: string } | null;
  };
  csrf: string;
}

export function clientPage(p: ClientPageInput): string {
  const w = p.webhook;
  const rate = w.attempts === 0 ? 'no attempt in the last 24 hours' : `${Math.round((w.delivered / w.attempts) * 1000) / 10}% of ${w.attempts} attempts delivered (24 hours)`;
  const states = p.byState.length === 0 ? '<p class="muted">No connection.</p>' : table(['State', 'Connections'], p.byState.map((s) => [e(stateText(s.state)), String(s.n)]));
  const users = table(['User', 'clientUserId', 'Created'], p.recentUsers.map((u) => [link(searchHref(u.id), u.id), e(u.client_user_id ?? '—'), e(u.created_at.toISOString())]));
  const failure = w.lastFailure === null ? 'none in the last 24 hours'
    : `${e(w.lastFailure.at.toISOString())}: ${e(w.lastFailure.event_type)} <code>${e(w.lastFailure.event_id)}</code>${w.lastFailure.response_code === null ? '' : ` (${w.lastFailure.response_code})`}${w.lastFailure.error === null ? '' : ` — ${e(w.lastFailure.error)}`}`;
  return renderConsolePage({
    title: p.client.name ?? p.client.id, csrf: p.csrf,
    body: `<p class="muted">client_id <code>${e(p.client.id)}</code></p>
<h2>Users and connections</h2><p>${p.users} users.</p>${states}
<h2>Webhook delivery</h2><dl class="facts"><dt>URL</dt><dd>${e(w.url ?? 'none registered')}</dd><dt>Success rate</dt><dd>${e(rate)}</dd>
<dt>Backlog</dt><dd>${w.pending} events awaiting delivery${w.oldestPending === null ? '' : `, the oldest from ${e(w.oldestPending.toISOString())}`}</dd>
<dt>Abandoned (24 hours)</dt><dd>${w.abandoned}</dd><dt>Last failure</dt><dd>${failure}</dd></dl>
<h2>Newest users</h2>${users}`,
  });
}
