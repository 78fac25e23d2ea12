/**
 * The sandbox control API (SPEC section 7): switch a connection's behaviour, retire a provider,
 * declare an outage, move the domain clock, and run the scheduler now. Admin token required.
 */
import { Type } from 'typebox';
import type { MovableClock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { writeSetting } from '../db/settings.ts';
import { badRequest, notFound } from '../errors.ts';
import { DateTime, ErrorBody } from '../http/schemas.ts';
import type { App } from '../http/types.ts';
import type { Catalog } from '../providers/catalog.ts';
import { providersRepository } from '../providers/repository.ts';
import { connectionsRepository } from '../connections/repository.ts';
import { toSyncJson } from '../syncs/runner.ts';
import { Sync } from '../syncs/schemas.ts';
import type { SyncEngine } from '../syncs/engine.ts';
import type { SyncRow } from '../syncs/repository.ts';
import type { ConnectionEvents } from '../webhooks/events.ts';
import type { WebhookDispatcher } from '../webhooks/dispatcher.ts';
import { adminGuard, type AdminThrottle } from '../admin/auth.ts';
import { setSandboxBehaviour, SANDBOX_USERNAMES } from './banks/index.ts';
import { addDuration } from './duration.ts';
import { DAY_MS, parseDateTime } from '../time.ts';

export const CLOCK_OFFSET_SETTING = 'sandbox_clock_offset_ms';
/** The farthest the sandbox clock may run ahead of real time (SPEC section 7: ten years). */
export const MAX_CLOCK_OFFSET_MS = 3_653 * DAY_MS;

/** A sandbox may start its clock in the past (MOORING_SANDBOX_CLOCK_START), up to a century. */
export const MAX_CLOCK_BEHIND_MS = 100 * 366 * DAY_MS;

/** A stored clock offset as the clock may use it: a whole number of ms from a century behind to ten years ahead, else null. */
export function usableClockOffset(stored: unknown): number | null {
  return typeof stored === 'number' && Number.isSafeInteger(stored) && stored >= -MAX_CLOCK_BEHIND_MS && stored <= MAX_CLOCK_OFFSET_MS ? stored : null;
}
const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody };

export interface SandboxControlDeps {
  db: Db;
  clock: MovableClock;
  catalog: Catalog;
  engine: SyncEngine;
  events: ConnectionEvents;
  dispatcher: WebhookDispatcher;
  adminToken: string;
  adminThrottle?: AdminThrottle;
  concurrency: number;
}

/** Switches an existing connection's sandbox behaviour; false when there is no such sandbox connection. */
export async function switchSandboxBehaviour(db: Db, connectionId: string, username: string): Promise<boolean> {
  const ref = await connectionsRepository(db).providerRefOf(connectionId);
  return ref != null && (await setSandboxBehaviour(db, ref, username));
}

/** Moves the domain clock forward by an ISO 8601 duration (kept across restarts); a bad or too far move is a 400 that changes nothing. */
export async function advanceSandboxClock(deps: Pick<SandboxControlDeps, 'db' | 'clock'>, advance: string): Promise<{ now: string; offsetMs: number }> {
  const now = deps.clock.now();
  const target = addDuration(now, advance);
  if (target === null || target.getTime() <= now.getTime()) {
    throw badRequest('invalid_duration', 'advance must be a positive ISO 8601 duration such as P30D, PT6H or P1DT6H', { field: 'advance' });
  }
  const offset = deps.clock.offsetMs() + (target.getTime() - now.getTime());
  if (offset > MAX_CLOCK_OFFSET_MS) {
    throw badRequest('clock_too_far', 'The sandbox clock cannot run more than ten years ahead of real time; DELETE /sandbox/clock returns it to real time', { field: 'advance', offsetMs: deps.clock.offsetMs() });
  }
  await writeSetting(deps.db, CLOCK_OFFSET_SETTING, offset);
  deps.clock.setOffsetMs(offset);
  return { now: deps.clock.now().toISOString(), offsetMs: offset };
}

/** Runs every sync due now, then the time-driven events and due webhook deliveries; answers when all have finished. */
export async function runSandboxScheduler(deps: Pick<SandboxControlDeps, 'db' | 'engine' | 'events' | 'dispatcher' | 'concurrency'>): Promise<{ ran: number; syncs: SyncRow[]; events: number; deliveries: number }> {
  const done = await deps.engine.runDue(deps.concurrency);
  const events = await deps.events.sweep(deps.db);
  const deliveries = await deps.dispatcher.deliverDue();
  return { ran: done.length, syncs: done, events, deliveries };
}

export function sandboxControlRoutes(app: App, deps: SandboxControlDeps): void {
  const tags = ['sandbox'];
  const security = [{ admin: [] }];
  const onRequest = adminGuard(deps.adminToken, deps.adminThrottle);
  const ProviderParams = Type.Object({ providerId: Type.String() });

  const provider = (id: string) => {
    const p = deps.catalog.get(id);
    if (p === undefined) throw notFound('Provider');
    return p;
  };

  app.post('/sandbox/connections/:connectionId/behaviour', {
    onRequest,
    schema: {
      tags, security, summary: "Switch an existing connection's sandbox behaviour",
      params: Type.Object({ connectionId: Type.String() }),
      body: Type.Object({ username: Type.Union(SANDBOX_USERNAMES.map((u) => Type.Literal(u))) }, { additionalProperties: false }),
      response: { 200: Type.Object({ connectionId: Type.String(), username: Type.String() }), ...errors },
    },
  }, async (req) => {
    if (!(await switchSandboxBehaviour(deps.db, req.params.connectionId, req.body.username))) throw notFound('Connection');
    return { connectionId: req.params.connectionId, username: req.body.username };
  });

  app.post('/sandbox/providers/:providerId/retire', {
    onRequest,
    schema: { tags, security, summary: 'Remove a provider permanently (its connections become never)', params: ProviderParams, response: { 200: Type.Object({ providerId: Type.String(), retiredAt: DateTime }), ...errors } },
  }, async (req) => {
    provider(req.params.providerId);
    const now = deps.clock.now();
    await providersRepository(deps.db).retire(req.params.providerId, now);
    // Its connections' status changes now (to never): have the event sweep look at them.
    await connectionsRepository(deps.db).checkStatusOfProviderAt(req.params.providerId, now);
    return { providerId: req.params.providerId, retiredAt: now.toISOString() };
  });

  app.post('/sandbox/providers/:providerId/outage', {
    onRequest,
    schema: {
      tags, security, summary: 'Make a provider fail every call until a time', params: ProviderParams,
      body: Type.Object({ until: Type.String() }, { additionalProperties: false }),
      response: { 200: Type.Object({ providerId: Type.String(), outageUntil: DateTime }), ...errors },
    },
  }, async (req) => {
    provider(req.params.providerId);
    const until = parseDateTime(req.body.until);
    if (until === null) throw badRequest('invalid_until', 'until must be an ISO 8601 date-time', { field: 'until' });
    if (until.getTime() <= deps.clock.now().getTime()) throw badRequest('invalid_until', 'until must be in the future (sandbox clock)', { field: 'until', now: deps.clock.now().toISOString() });
    await providersRepository(deps.db).declareOutage(req.params.providerId, until);
    return { providerId: req.params.providerId, outageUntil: until.toISOString() };
  });

  const ClockBody = Type.Object({ now: DateTime, offsetMs: Type.Integer() });
  app.get('/sandbox/clock', { onRequest, schema: { tags, security, summary: "Mooring's domain clock", response: { 200: ClockBody, 401: ErrorBody } } }, async () => ({
    now: deps.clock.now().toISOString(),
    offsetMs: deps.clock.offsetMs(),
  }));

  app.post('/sandbox/clock', {
    onRequest,
    schema: {
      tags, security, summary: 'Move the domain clock forward by an ISO 8601 duration (e.g. P30D, PT6H, P1DT6H); at most ten years ahead of real time',
      body: Type.Object({ advance: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
      response: { 200: ClockBody, ...errors },
    },
  }, async (req) => advanceSandboxClock(deps, req.body.advance));

  app.delete('/sandbox/clock', {
    onRequest,
    schema: { tags, security, summary: 'Return the domain clock to real time', response: { 200: ClockBody, 401: ErrorBody } },
  }, async () => {
    await writeSetting(deps.db, CLOCK_OFFSET_SETTING, 0);
    deps.clock.setOffsetMs(0);
    return { now: deps.clock.now().toISOString(), offsetMs: 0 };
  });

  app.post('/sandbox/scheduler/run', {
    onRequest,
    schema: {
      tags, security,
      summary: 'Run every sync that is due now, then the time-driven events and due webhook deliveries; answers when all have finished',
      response: { 200: Type.Object({ ran: Type.Integer(), syncs: Type.Array(Sync), events: Type.Integer(), deliveries: Type.Integer() }), 401: ErrorBody },
    },
  }, async () => {
    const r = await runSandboxScheduler(deps);
    return { ...r, syncs: r.syncs.map(toSyncJson) };
  });
}
