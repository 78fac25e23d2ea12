/**
 * Helpers for webhook tests: API clients allowed the webhook scopes, registration through the admin
 * API, the client's event log, and driving the sandbox clock and scheduler.
 */
import { accessToken, ALL_API_SCOPES, apiClient, call, type ApiClient, type Res } from './api.ts';
import { ADMIN_TOKEN } from './server.ts';

export interface DeliveryJson {
  at: string;
  status: 'delivered' | 'failed';
  responseCode: number | null;
  error?: string | null;
}

export interface EventJson {
  id: string;
  eventType: string;
  userId: string;
  payload: Record<string, unknown> & { connectionId?: string };
  createdAt: string;
  deliveries: DeliveryJson[];
}

export interface EventList {
  data: EventJson[];
  links: { self: string; next?: string; prev?: string };
  meta: { total?: number };
}

/** A client_secret_basic API client that may use every REST scope, webhooks included. */
export const webhookClient = (baseUrl: string): Promise<ApiClient> => apiClient(baseUrl, { scope: ALL_API_SCOPES });

export const adminCall = (baseUrl: string, method: string, path: string, json?: unknown, token: string | null = ADMIN_TOKEN): Promise<Res> =>
  call(baseUrl, method, path, { ...(token !== null ? { token } : {}), ...(json !== undefined ? { json } : {}) });

/** PUT /admin/clients/:clientId/webhook; throws unless 200. Answers the signing secret. */
export async function setWebhook(baseUrl: string, clientId: string, url: string, rotateSecret?: boolean): Promise<string> {
  const res = await adminCall(baseUrl, 'PUT', `/admin/clients/${encodeURIComponent(clientId)}/webhook`, { url, ...(rotateSecret !== undefined ? { rotateSecret } : {}) });
  if (res.status !== 200) throw new Error(`webhook registration failed: ${res.status} ${res.text}`);
  return (res.body as { secret: string }).secret;
}

export async function eventsPage(baseUrl: string, client: ApiClient, query: Record<string, string | number> = {}): Promise<EventList> {
  const token = await accessToken(baseUrl, client, 'webhooks:read');
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
  const res = await call(baseUrl, 'GET', `/webhook-events${qs === '' ? '' : `?${qs}`}`, { token });
  if (res.status !== 200) throw new Error(`GET /webhook-events failed: ${res.status} ${res.text}`);
  return res.body as EventList;
}

/** Every event in the client's log (all pages). */
export async function allEvents(baseUrl: string, client: ApiClient): Promise<EventJson[]> {
  const out: EventJson[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await eventsPage(baseUrl, client, { limit: 1000, offset });
    out.push(...page.data);
    if (page.data.length < 1000) return out;
  }
}

export async function replay(baseUrl: string, client: ApiClient, eventId: string, scope = 'webhooks:write'): Promise<Res> {
  const token = await accessToken(baseUrl, client, scope);
  return call(baseUrl, 'POST', `/webhook-events/${encodeURIComponent(eventId)}/replay`, { token });
}

/** POST /sandbox/scheduler/run (due syncs, the event sweep, due deliveries). */
export async function runScheduler(baseUrl: string): Promise<Res> {
  const res = await adminCall(baseUrl, 'POST', '/sandbox/scheduler/run');
  if (res.status !== 200) throw new Error(`scheduler run failed: ${res.status} ${res.text}`);
  return res;
}

export async function advanceClock(baseUrl: string, duration: string): Promise<string> {
  const res = await adminCall(baseUrl, 'POST', '/sandbox/clock', { advance: duration });
  if (res.status !== 200) throw new Error(`clock advance failed: ${res.status} ${res.text}`);
  return (res.body as { now: string }).now;
}

export async function clockNow(baseUrl: string): Promise<number> {
  const res = await adminCall(baseUrl, 'GET', '/sandbox/clock');
  return Date.parse((res.body as { now: string }).now);
}

/** A sync the user is present for (does not use the unattended budget). */
export async function attendedSync(client: ApiClient, userId: string, connectionId: string): Promise<string> {
  const r = await client.mh.syncUserConnection({ userId, connectionId, customerIpAddress: '203.0.113.7' });
  return r.data.status;
}

export async function setBehaviour(baseUrl: string, connectionId: string, username: string): Promise<void> {
  const res = await adminCall(baseUrl, 'POST', `/sandbox/connections/${encodeURIComponent(connectionId)}/behaviour`, { username });
  if (res.status !== 200) throw new Error(`behaviour switch failed: ${res.status} ${res.text}`);
}

export const ofConnection = (events: EventJson[], connectionId: string, type?: string): EventJson[] =>
  events.filter((e) => e.payload.connectionId === connectionId && (type === undefined || e.eventType === type));

export const byCreated = (events: EventJson[]): EventJson[] => [...events].sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
