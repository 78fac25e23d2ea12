/**
 * The provider adapters, one per adapter kind of the catalog (CatalogEntry.adapter). See README.md
 * in this directory for adding a provider.
 */
import type { AdapterKind } from './kinds.ts';
import { createLegacyAdapter } from './legacy/adapter.ts';
import { createOpenBankingAdapter } from './openbanking/adapter.ts';
import type { ProviderAdapter } from './provider.ts';
import { createValuationAdapter } from './valuation/adapter.ts';
import { DEFAULT_TIMERS } from '../timers.ts';

/** Each HTTP call to a provider may take this long (user_slow's calls take 2 s). */
export const DEFAULT_PROVIDER_TIMEOUT_MS = DEFAULT_TIMERS.providerTimeoutMs;

export interface ProviderAdapterOptions {
  /** Mooring's client secret at the sandbox banks (client id `mooring`). */
  sandboxClientSecret: string;
  timeoutMs?: number;
}

export type ProviderAdapters = Record<AdapterKind, ProviderAdapter> & {
  /** Closes the adapters' connections (mutual-TLS agents). */
  close(): Promise<void>;
};

export function createProviderAdapters(opts: ProviderAdapterOptions): ProviderAdapters {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS;
  const openbanking = createOpenBankingAdapter({ timeoutMs });
  return {
    openbanking,
    legacy: createLegacyAdapter({ timeoutMs }),
    valuation: createValuationAdapter({ clientSecret: opts.sandboxClientSecret, timeoutMs }),
    close: () => openbanking.close(),
  };
}
