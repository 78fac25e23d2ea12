/**
 * The provider adapters, one per adapter kind of the catalog (CatalogEntry.adapter) that this
 * version implements. See README.md
 * in this directory for adding a provider.
 */
import { createEnableBankingAdapter } from './enablebanking/adapter.ts';
import type { SecretBox } from '../crypto/secrets.ts';
import type { Queryable } from '../db/db.ts';
import { createGoCardlessAdapter } from './gocardless/adapter.ts';
import { createLegacyAdapter } from './legacy/adapter.ts';
import { createOpenBankingAdapter } from './openbanking/adapter.ts';
import type { ProviderAdapters } from './provider.ts';
import { createValuationAdapter } from './valuation/adapter.ts';
import { DEFAULT_TIMERS } from '../timers.ts';

/** Each HTTP call to a provider may take this long (user_slow's calls take 2 s). */
export const DEFAULT_PROVIDER_TIMEOUT_MS = DEFAULT_TIMERS.providerTimeoutMs;

export interface ProviderAdapterOptions {
  /** Mooring's client secret at the sandbox banks (client id `mooring`). */
  sandboxClientSecret: string;
  timeoutMs?: number;
  /**
   * The database and key through which adapters share state between Mooring's processes (the
   * GoCardless token pair, sealed). Absent (some tests): each process keeps its own.
   */
  db?: Queryable;
  secrets?: SecretBox;
}

/** One adapter per kind this version implements (kinds.ts IMPLEMENTED_ADAPTER_KINDS), and a way to close their connections. */
export function createProviderAdapters(opts: ProviderAdapterOptions): ProviderAdapters & { close(): Promise<void> } {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS;
  const openbanking = createOpenBankingAdapter({ timeoutMs });
  return {
    openbanking,
    legacy: createLegacyAdapter({ timeoutMs }),
    valuation: createValuationAdapter({ clientSecret: opts.sandboxClientSecret, timeoutMs }),
    enablebanking: createEnableBankingAdapter({ timeoutMs }),
    gocardless: createGoCardlessAdapter({ timeoutMs, ...(opts.db !== undefined ? { db: opts.db } : {}), ...(opts.secrets !== undefined ? { secrets: opts.secrets } : {}) }),
    close: () => openbanking.close(),
  };
}
