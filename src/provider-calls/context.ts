/**
 * Who is calling a provider, for the provider call log: the sync runner and the journey service run
 * adapter work inside `runWithCallContext` (provider, connection, sync or journey, and where the
 * rows go); the provider HTTP edge (src/providers/http.ts) reads it for every call it makes. Calls
 * outside any context (the providers probe of the CLI, client registration) are not recorded.
 *
 * A leaf module: it knows the shape of a row, not how calls are classified or stored.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ProviderErrorKind } from '../providers/provider.ts';

/** One recorded call, as the writer stores it (column names in migrations/0017_provider_calls.sql). */
export interface ProviderCallRow {
  at: Date;
  providerId: string;
  connectionId: string | null;
  syncId: string | null;
  journeyId: string | null;
  method: string;
  endpoint: string;
  status: number | null;
  latencyMs: number;
  errorKind: ProviderErrorKind | null;
  interactionId: string | null;
}

/** Where recorded calls go, and the domain clock that stamps them. */
export interface CallSink {
  now(): Date;
  record(row: ProviderCallRow): void;
}

export interface CallWho {
  providerId: string;
  connectionId: string | null;
  syncId?: string | null;
  journeyId?: string | null;
}

/** Calls made inside one adapter operation (atEdge): kept until the operation's outcome is known. */
export interface EdgeScope {
  open: boolean;
  pending: { row: ProviderCallRow; failure: unknown }[];
  /** Classifies a call's own failure the way the adapter does (used for calls that end after the operation). */
  kindOf(failure: unknown): ProviderErrorKind;
}

export interface CallContext {
  sink: CallSink;
  who: CallWho;
  edge: EdgeScope | null;
}

const storage = new AsyncLocalStorage<CallContext>();

/** Runs fn with its provider calls recorded to `sink` as made by `who`. */
export function runWithCallContext<T>(sink: CallSink, who: CallWho, fn: () => Promise<T>): Promise<T> {
  return storage.run({ sink, who, edge: null }, fn);
}

/** The context of the current call, or undefined outside any (nothing is recorded). */
export function currentCallContext(): CallContext | undefined {
  return storage.getStore();
}

/** Runs fn inside an adapter operation's scope (see EdgeScope). */
export function runInEdgeScope<T>(ctx: CallContext, scope: EdgeScope, fn: () => Promise<T>): Promise<T> {
  return storage.run({ ...ctx, edge: scope }, fn);
}
