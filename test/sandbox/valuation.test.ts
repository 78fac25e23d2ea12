import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../src/providers/catalog.ts';
import type { JourneyStep } from '../../src/providers/provider.ts';
import { setSandboxBehaviour } from '../../src/sandbox/banks/index.ts';
import { advanceDays, CALLBACK_URL, errorKind, fetchData, retire, startSandbox, type Harness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startSandbox();
});
afterAll(async () => h.close());

const startOf = (d: Date): string => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)).toISOString();

async function connect(provider: CatalogEntry, input: Record<string, string>): Promise<JourneyStep> {
  const first = await h.adapters.valuation.startAuthorisation({ provider, callbackUrl: CALLBACK_URL, state: 's', consentExpiresAt: null });
  return h.adapters.valuation.completeAuthorisation({ provider, pending: first.kind === 'form' ? first.pending : {}, input, callbackUrl: CALLBACK_URL });
}
async function connected(provider: CatalogEntry, input: Record<string, string>): Promise<JourneyStep & { kind: 'done' }> {
  const step = await connect(provider, input);
  if (step.kind !== 'done') throw new Error(`expected done, got ${step.kind}`);
  return step;
}

describe('valuation providers', () => {
  it('Zoopla asks for house number and postcode and values the property monthly', async () => {
    const zoopla = h.provider('Zoopla');
    const first = await h.adapters.valuation.startAuthorisation({ provider: zoopla, callbackUrl: CALLBACK_URL, state: 's', consentExpiresAt: null });
    expect(first.kind === 'form' && first.fields.map((f) => f.name)).toEqual(['houseNumber', 'postcode']);
    const done = await connected(zoopla, { houseNumber: '12', postcode: 'sw1a1aa' });
    const r = await fetchData(h, 'valuation', zoopla, done.grant);
    expect(r.transactions).toEqual([]);
    expect(r.accounts).toHaveLength(1);
    const [home] = r.accounts;
    expect(home).toMatchObject({ type: 'properties:residential', accountName: '12, SW1A 1AA', currency: 'GBP' });
    expect(home!.balanceMinor).toBeGreaterThanOrEqual(15_000_000);
    expect(home!.balanceMinor % 100_000).toBe(0);
    expect(r.asOf?.toISOString()).toBe(startOf(h.clock.now()));
    expect((await fetchData(h, 'valuation', zoopla, done.grant)).accounts[0]!.balanceMinor).toBe(home!.balanceMinor);
    advanceDays(h, 40);
    const later = await fetchData(h, 'valuation', zoopla, done.grant);
    expect(later.asOf?.toISOString()).toBe(startOf(h.clock.now()));
    expect(later.asOf!.getTime()).toBeGreaterThan(r.asOf!.getTime());
  });

  it('Autotrader values a vehicle by registration', async () => {
    const autotrader = h.provider('Autotrader');
    const done = await connected(autotrader, { registration: 'ab12 cde' });
    const r = await fetchData(h, 'valuation', autotrader, done.grant);
    expect(r.accounts[0]).toMatchObject({ type: 'asset' });
    expect(r.accounts[0]!.accountName).toContain('AB12CDE');
    expect(r.accounts[0]!.balanceMinor).toBeGreaterThan(0);
  });

  it('refuses bad or unknown assets as invalid_input', async () => {
    const mouseprice = h.provider('Mouseprice');
    expect(await errorKind(connect(mouseprice, { houseNumber: '3', postcode: 'not a postcode' }))).toBe('invalid_input');
    expect(await errorKind(connect(mouseprice, { houseNumber: '', postcode: 'SW1A 1AA' }))).toBe('invalid_input');
    expect(await errorKind(connect(mouseprice, { houseNumber: '3', postcode: 'ZZ1 1ZZ' }))).toBe('invalid_input');
    expect(await errorKind(connect(h.provider('Autotrader'), { registration: '!!' }))).toBe('invalid_input');
  });

  it('behaviours switched by setSandboxBehaviour: flaky, revoked, stale', async () => {
    const mouseprice = h.provider('Mouseprice');
    const flaky = await connected(mouseprice, { houseNumber: '1', postcode: 'M1 1AE' });
    await setSandboxBehaviour(h.db, flaky.ref, 'user_flaky');
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i += 1) outcomes.push(await fetchData(h, 'valuation', mouseprice, flaky.grant).then(() => 'ok', (e: { kind: string }) => e.kind));
    expect(outcomes).toEqual(['ok', 'unavailable', 'ok']);

    const revoked = await connected(mouseprice, { houseNumber: '2', postcode: 'M1 1AE' });
    await setSandboxBehaviour(h.db, revoked.ref, 'user_revoked');
    await fetchData(h, 'valuation', mouseprice, revoked.grant);
    expect(await errorKind(fetchData(h, 'valuation', mouseprice, revoked.grant))).toBe('credentials');

    const stale = await connected(mouseprice, { houseNumber: '3', postcode: 'M1 1AE' });
    await setSandboxBehaviour(h.db, stale.ref, 'user_stale');
    const s1 = await fetchData(h, 'valuation', mouseprice, stale.grant);
    advanceDays(h, 40);
    expect((await fetchData(h, 'valuation', mouseprice, stale.grant)).asOf).toEqual(s1.asOf);
  });

  it('user_ratelimited: the first valuation succeeds, later ones answer 429 with Retry-After 3600', async () => {
    const mouseprice = h.provider('Mouseprice');
    const limited = await connected(mouseprice, { houseNumber: '4', postcode: 'M1 1AE' });
    await setSandboxBehaviour(h.db, limited.ref, 'user_ratelimited');
    await fetchData(h, 'valuation', mouseprice, limited.grant);
    const err = await fetchData(h, 'valuation', mouseprice, limited.grant).then(() => null, (e: unknown) => e as { kind: string; retryAfterMs?: number });
    expect(err).toMatchObject({ kind: 'rate_limited', retryAfterMs: 3_600_000 });
  });

  it('revoking stops tracking the asset; a retired provider is unavailable', async () => {
    const zoopla = h.provider('Zoopla');
    const done = await connected(zoopla, { houseNumber: '9', postcode: 'EH1 1YZ' });
    await h.adapters.valuation.revoke(zoopla, done.grant);
    expect(await errorKind(fetchData(h, 'valuation', zoopla, done.grant))).toBe('credentials');
    const other = await connected(zoopla, { houseNumber: '10', postcode: 'EH1 1YZ' });
    await retire(h, zoopla);
    expect(await errorKind(fetchData(h, 'valuation', zoopla, other.grant))).toBe('unavailable');
  });
});
