/**
 * Operations endpoints (SPEC section 1): the API reference under /docs, Prometheus metrics and the
 * health check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { accessToken, apiClient, call } from '../helpers/api.ts';

interface Operation {
  requestBody?: { content?: Record<string, { schema?: SchemaObject }> };
  responses?: Record<string, { content?: Record<string, { schema?: SchemaObject }> }>;
  parameters?: { name: string; in: string }[];
  security?: unknown[];
}
interface SchemaObject {
  type?: string;
  properties?: Record<string, unknown>;
  $ref?: string;
  [k: string]: unknown;
}
interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, SchemaObject>; securitySchemes?: Record<string, unknown> };
}

describe('operations endpoints', () => {
  let ts: TestServer;
  let doc: OpenApiDoc;

  /** Follows a $ref into components.schemas (the document may inline schemas or reference them). */
  const resolve = (s: SchemaObject | undefined): SchemaObject | undefined => {
    if (s?.$ref === undefined) return s;
    const name = s.$ref.split('/').pop() ?? '';
    return doc.components?.schemas?.[name];
  };
  const jsonSchema = (c: { content?: Record<string, { schema?: SchemaObject }> } | undefined): SchemaObject | undefined =>
    resolve(c?.content?.['application/json']?.schema);

  beforeAll(async () => {
    ts = await startTestServer();
    const res = await call(ts.baseUrl, 'GET', '/docs/json');
    expect(res.status).toBe(200);
    doc = res.body as OpenApiDoc;
  });
  afterAll(async () => ts.stop());

  it('serves the rendered API reference as HTML at /docs', async () => {
    const res = await fetch(`${ts.baseUrl}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<html/i);
    expect(html.length).toBeGreaterThan(200);
  });

  it('serves an OpenAPI 3 document at /docs/json that lists /users and /v2.0/sync', () => {
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([
      '/users',
      '/users/{userId}',
      '/users/{userId}/connections',
      '/users/{userId}/connections/{connectionId}',
      '/users/{userId}/connections/{connectionId}/syncs',
      '/users/{userId}/syncs/{syncId}',
      '/v2.0/sync/{connectionId}',
    ]));
    expect(Object.keys(doc.paths['/users'] ?? {})).toEqual(expect.arrayContaining(['get', 'post']));
    expect(Object.keys(doc.paths['/v2.0/sync/{connectionId}'] ?? {})).toContain('post');
  });

  it('documents the request and response schemas of POST /users and GET /users', () => {
    const post = doc.paths['/users']?.post;
    expect(jsonSchema(post?.requestBody)?.properties).toHaveProperty('clientUserId');
    const created = jsonSchema(post?.responses?.['201']);
    expect(created?.properties).toEqual(expect.objectContaining({ userId: expect.anything(), clientId: expect.anything(), connectionIds: expect.anything() }));
    expect(post?.responses).toHaveProperty('401');
    expect(post?.responses).toHaveProperty('403');

    const list = doc.paths['/users']?.get;
    expect((list?.parameters ?? []).map((p) => `${p.in}:${p.name}`)).toEqual(expect.arrayContaining(['query:limit', 'query:offset']));
    const listed = jsonSchema(list?.responses?.['200']);
    expect(listed?.properties).toEqual(expect.objectContaining({ data: expect.anything(), links: expect.anything(), meta: expect.anything() }));
  });

  it('documents the request and response schemas of POST /v2.0/sync/{connectionId}', () => {
    const sync = doc.paths['/v2.0/sync/{connectionId}']?.post;
    expect((sync?.parameters ?? []).map((p) => `${p.in}:${p.name}`)).toContain('path:connectionId');
    expect(jsonSchema(sync?.requestBody)?.properties).toEqual(expect.objectContaining({ customerIpAddress: expect.anything(), customerLastLoggedTime: expect.anything() }));
    const ok = jsonSchema(sync?.responses?.['200']);
    const data = resolve(ok?.properties?.data as SchemaObject | undefined);
    expect(data?.properties).toHaveProperty('status');
    expect(sync?.security).toEqual(expect.arrayContaining([expect.objectContaining({ bearer: expect.arrayContaining(['accounts:read', 'accounts:write:all']) })]));
  });

  it('serves Prometheus text at /metrics with mooring_http_request_duration_seconds for the routes called', async () => {
    const client = await apiClient(ts.baseUrl);
    const token = await accessToken(ts.baseUrl, client, 'user:read');
    expect((await call(ts.baseUrl, 'GET', '/users', { token })).status).toBe(200);
    expect((await call(ts.baseUrl, 'GET', '/users')).status).toBe(401);

    const res = await fetch(`${ts.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('# TYPE mooring_http_request_duration_seconds histogram');
    const buckets = text.split('\n').filter((l) => l.startsWith('mooring_http_request_duration_seconds_bucket{'));
    expect(buckets.some((l) => l.includes('route="/users"') && l.includes('status="200"') && l.includes('method="GET"'))).toBe(true);
    expect(buckets.some((l) => l.includes('route="/users"') && l.includes('status="401"'))).toBe(true);
    const count = text.split('\n').find((l) => l.startsWith('mooring_http_request_duration_seconds_count{') && l.includes('route="/users"') && l.includes('status="200"'));
    expect(Number(count?.split(' ').pop())).toBeGreaterThanOrEqual(1);
  });

  it('answers 200 at /health while the database is reachable', async () => {
    const res = await call(ts.baseUrl, 'GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });
});
