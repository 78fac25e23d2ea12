import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../src/providers/catalog.ts';
import type { JourneyStep, JsonObject } from '../../src/providers/provider.ts';
import { SANDBOX_ONE_TIME_CODE, setSandboxBehaviour } from '../../src/sandbox/banks/index.ts';
import { advanceDays, CALLBACK_URL, declareOutage, errorKind, fetchData, startSandbox, type Harness } from './harness.ts';

let h: Harness;
let aviva: CatalogEntry;
beforeAll(async () => {
  h = await startSandbox();
  aviva = h.provider('Aviva');
});
afterAll(async () => h.close());

const start = () => h.adapters.legacy.startAuthorisation({ provider: aviva, callbackUrl: CALLBACK_URL, state: 's', consentExpiresAt: null });
const submit = (pending: JsonObject, input: Record<string, string>) =>
  h.adapters.legacy.completeAuthorisation({ provider: aviva, pending, input, callbackUrl: CALLBACK_URL });

async function logIn(username: string): Promise<JourneyStep & { kind: 'done' }> {
  const first = await start();
  const step = await submit(first.kind === 'form' ? first.pending : {}, { username, password: 'hunter2' });
  if (step.kind !== 'done') throw new Error(`expected done, got ${step.kind}`);
  return step;
}

describe('legacy provider (Aviva)', () => {
  it('asks for username and password, then fetches a pension and an investment with 30 transactions', async () => {
    const first = await start();
    expect(first.kind).toBe('form');
    if (first.kind !== 'form') return;
    expect(first.fields.map((f) => [f.name, f.type])).toEqual([['username', 'text'], ['password', 'password']]);
    const done = await logIn('user_ok');
    expect(done.ref).toMatch(/^cred-/);
    const r = await fetchData(h, 'legacy', aviva, done.grant);
    expect(r.partial).toBe(false);
    expect(r.accounts.map((a) => a.type).sort()).toEqual(['investment', 'pension']);
    expect(r.transactions).toHaveLength(30);
    expect(r.accounts.every((a) => Number.isInteger(a.balanceMinor) && a.balanceMinor > 0)).toBe(true);
    expect(Math.abs(r.asOf!.getTime() - h.clock.now().getTime())).toBeLessThan(5_000);
    const again = await fetchData(h, 'legacy', aviva, done.grant);
    expect(again.transactions.map((t) => t.providerTransactionId)).toEqual(r.transactions.map((t) => t.providerTransactionId));
    advanceDays(h, 2);
    expect((await fetchData(h, 'legacy', aviva, done.grant)).transactions).toHaveLength(32);
  });

  it('rejects an empty username as invalid_input', async () => {
    const first = await start();
    expect(await errorKind(submit(first.kind === 'form' ? first.pending : {}, { username: '', password: 'x' }))).toBe('invalid_input');
  });

  it('user_mfa: asks for the one-time code; a wrong code is invalid_input; unattended syncs need the user', async () => {
    const first = await start();
    const otpStep = await submit(first.kind === 'form' ? first.pending : {}, { username: 'user_mfa', password: 'x' });
    expect(otpStep.kind).toBe('form');
    if (otpStep.kind !== 'form') return;
    expect(otpStep.fields.map((f) => f.name)).toEqual(['otp']);
    expect(JSON.stringify(otpStep.pending)).not.toContain('"x"');
    expect(await errorKind(submit(otpStep.pending, { otp: '000000' }))).toBe('invalid_input');
    const done = await submit(otpStep.pending, { otp: SANDBOX_ONE_TIME_CODE });
    expect(done.kind).toBe('done');
    if (done.kind !== 'done') return;
    expect((await fetchData(h, 'legacy', aviva, done.grant, { attended: true })).accounts).toHaveLength(2);
    expect(await errorKind(fetchData(h, 'legacy', aviva, done.grant))).toBe('mfa_required');
    expect(await errorKind(submit(otpStep.pending, { otp: SANDBOX_ONE_TIME_CODE }))).toBe('journey_rejected');
  });

  it('user_partial, user_flaky, user_revoked and user_stale behave as the sandbox table says', async () => {
    const partial = await logIn('user_partial');
    const p = await fetchData(h, 'legacy', aviva, partial.grant);
    expect(p.partial).toBe(true);
    expect(p.accounts).toHaveLength(2);

    const flaky = await logIn('user_flaky');
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i += 1) outcomes.push(await fetchData(h, 'legacy', aviva, flaky.grant).then(() => 'ok', (e: { kind: string }) => e.kind));
    expect(outcomes).toEqual(['ok', 'unavailable', 'ok', 'unavailable']);

    const revoked = await logIn('user_revoked');
    await fetchData(h, 'legacy', aviva, revoked.grant);
    expect(await errorKind(fetchData(h, 'legacy', aviva, revoked.grant))).toBe('credentials');

    const stale = await logIn('user_stale');
    const s1 = await fetchData(h, 'legacy', aviva, stale.grant);
    advanceDays(h, 3);
    const s2 = await fetchData(h, 'legacy', aviva, stale.grant);
    expect(s2.asOf).toEqual(s1.asOf);
    expect(s2.transactions).toHaveLength(30);
  });

  it('user_ratelimited: the first sync succeeds, later ones answer 429 with Retry-After 3600', async () => {
    const limited = await logIn('user_ratelimited');
    expect((await fetchData(h, 'legacy', aviva, limited.grant)).accounts).toHaveLength(2);
    for (const attended of [false, true]) {
      const err = await fetchData(h, 'legacy', aviva, limited.grant, { attended }).then(() => null, (e: unknown) => e as { kind: string; retryAfterMs?: number });
      expect(err).toMatchObject({ kind: 'rate_limited', retryAfterMs: 3_600_000 });
    }
  });

  it('setSandboxBehaviour switches a credential by its ref', async () => {
    const done = await logIn('user_ok');
    expect(await setSandboxBehaviour(h.db, done.ref, 'user_mfa')).toBe(true);
    expect(await errorKind(fetchData(h, 'legacy', aviva, done.grant))).toBe('mfa_required');
  });

  it('revoking logs out at the provider: later syncs are refused as credentials', async () => {
    const done = await logIn('user_ok');
    await h.adapters.legacy.revoke(aviva, done.grant);
    expect(await errorKind(fetchData(h, 'legacy', aviva, done.grant))).toBe('credentials');
    await h.adapters.legacy.revoke(aviva, done.grant);
  });

  it('a declared outage makes login and syncs unavailable', async () => {
    const done = await logIn('user_ok');
    await declareOutage(h, aviva, new Date(h.clock.now().getTime() + 3_600_000));
    const first = await start();
    expect(await errorKind(submit(first.kind === 'form' ? first.pending : {}, { username: 'user_ok', password: 'x' }))).toBe('unavailable');
    expect(await errorKind(fetchData(h, 'legacy', aviva, done.grant))).toBe('unavailable');
    advanceDays(h, 1);
    expect((await fetchData(h, 'legacy', aviva, done.grant)).accounts).toHaveLength(2);
  });
});
