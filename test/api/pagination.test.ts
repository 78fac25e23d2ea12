/**
 * Pagination of GET /users (SPEC section 3): limit and offset, and links.self/next/prev that a
 * client can follow page by page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { accessToken, apiClient, call, type ApiClient } from '../helpers/api.ts';

interface UserList {
  data: { userId: string; clientUserId?: string }[];
  links: { self: string; next?: string; prev?: string };
  meta: { total?: number };
}

const USERS = 7;
const PAGE = 3;

describe('pagination of GET /users', () => {
  let ts: TestServer;
  let client: ApiClient;
  let token: string;
  let created: string[];

  const page = async (pathOrUrl: string): Promise<UserList> => {
    const path = pathOrUrl.startsWith(ts.baseUrl) ? pathOrUrl.slice(ts.baseUrl.length) : pathOrUrl;
    const res = await call(ts.baseUrl, 'GET', path, { token });
    expect(res.status, path).toBe(200);
    return res.body as UserList;
  };

  const queryOf = (url: string): Record<string, string> => Object.fromEntries(new URL(url).searchParams);

  beforeAll(async () => {
    ts = await startTestServer();
    client = await apiClient(ts.baseUrl);
    // Another client's users must not appear on any page nor count in the total.
    const other = await apiClient(ts.baseUrl);
    await other.mh.registerUser({ clientUserId: 'other-1' });
    await other.mh.registerUser({ clientUserId: 'other-2' });
    created = [];
    for (let i = 0; i < USERS; i += 1) created.push((await client.mh.registerUser({ clientUserId: `user-${i}` })).userId);
    token = await accessToken(ts.baseUrl, client, 'user:read');
  });
  afterAll(async () => ts.stop());

  it('walks three pages forward through links.next, each link carrying the right limit and offset', async () => {
    const first = await page(`/users?limit=${PAGE}`);
    expect(first.data).toHaveLength(PAGE);
    expect(first.links.prev).toBeUndefined();
    expect(queryOf(first.links.self)).toMatchObject({ limit: String(PAGE), offset: '0' });
    expect(first.links.next).toEqual(expect.any(String));
    expect(queryOf(first.links.next ?? '')).toMatchObject({ limit: String(PAGE), offset: String(PAGE) });
    if (first.meta.total !== undefined) expect(first.meta.total).toBe(USERS);

    const second = await page(first.links.next ?? '');
    expect(second.data).toHaveLength(PAGE);
    expect(queryOf(second.links.self)).toMatchObject({ limit: String(PAGE), offset: String(PAGE) });
    expect(queryOf(second.links.next ?? '')).toMatchObject({ limit: String(PAGE), offset: String(2 * PAGE) });
    expect(queryOf(second.links.prev ?? '')).toMatchObject({ limit: String(PAGE), offset: '0' });

    const third = await page(second.links.next ?? '');
    expect(third.data).toHaveLength(USERS - 2 * PAGE);
    expect(third.links.next).toBeUndefined();
    expect(queryOf(third.links.self)).toMatchObject({ limit: String(PAGE), offset: String(2 * PAGE) });
    expect(queryOf(third.links.prev ?? '')).toMatchObject({ limit: String(PAGE), offset: String(PAGE) });

    // Together the pages hold every user of the client exactly once, in creation order.
    const all = [...first.data, ...second.data, ...third.data].map((u) => u.userId);
    expect(all).toEqual(created);
  });

  it('walks back from the last page through links.prev to the same pages', async () => {
    const forward = await page(`/users?limit=${PAGE}&offset=${2 * PAGE}`);
    const middle = await page(forward.links.prev ?? '');
    const start = await page(middle.links.prev ?? '');
    expect(middle.data.map((u) => u.userId)).toEqual(created.slice(PAGE, 2 * PAGE));
    expect(start.data.map((u) => u.userId)).toEqual(created.slice(0, PAGE));
    expect(start.links.prev).toBeUndefined();
  });

  it('points links at the server\'s public URL and /users', async () => {
    const first = await page(`/users?limit=${PAGE}`);
    for (const link of [first.links.self, first.links.next ?? '']) {
      const u = new URL(link);
      expect(u.origin).toBe(ts.baseUrl);
      expect(u.pathname).toBe('/users');
    }
  });

  it('answers an offset past the end with an empty page that links back but not forward', async () => {
    const past = await page(`/users?limit=${PAGE}&offset=20`);
    expect(past.data).toEqual([]);
    expect(past.links.next).toBeUndefined();
    expect(past.links.prev).toEqual(expect.any(String));
  });

  it('answers an offset that is not a multiple of the limit with the users from that offset', async () => {
    const odd = await page(`/users?limit=${PAGE}&offset=2`);
    expect(odd.data.map((u) => u.userId)).toEqual(created.slice(2, 2 + PAGE));
    expect(queryOf(odd.links.prev ?? '')).toMatchObject({ offset: '0' });
    expect(queryOf(odd.links.next ?? '')).toMatchObject({ offset: String(2 + PAGE) });
  });

  it('defaults to a page of 100 from offset 0 without limit and offset', async () => {
    const all = await page('/users');
    expect(all.data.map((u) => u.userId)).toEqual(created);
    expect(all.links.next).toBeUndefined();
    expect(all.links.prev).toBeUndefined();
    expect(queryOf(all.links.self)).toMatchObject({ limit: '100', offset: '0' });
  });
});
