/**
 * The interface every provider adapter implements, and the closed set of errors an adapter may
 * raise. Adapters translate each provider's quirks (HTTP codes, error bodies, time-outs, garbage)
 * into a ProviderError at their edge; the sync runner decides by `kind`, never by message text.
 */
import type { CatalogEntry } from './catalog.ts';
import type { AdapterKind, ImplementedAdapterKind } from './kinds.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const PROVIDER_ERROR_KINDS = [
  /** The provider refused our credentials or the user revoked access: the user must re-authenticate. */
  'credentials',
  /**
   * The upstream says the consent itself has expired (Open Banking consent `Expired`, Enable Banking
   * session `EXPIRED`, GoCardless requisition `EX` or an expired agreement), possibly before the
   * connection's own expiresAt: the connection's consent is expired from then on (SPEC sections 5 and 10).
   */
  'consent_expired',
  /** The provider needs the user present to enter a one-time code. */
  'mfa_required',
  /** The provider is down, answered 5xx, or declared an outage. Retry later. */
  'unavailable',
  /** The provider answered, but not with anything we can read. */
  'bad_response',
  /** The provider took too long. */
  'timeout',
  /** The provider limited our request rate. */
  'rate_limited',
  /** The user cancelled or rejected the journey at the provider. */
  'journey_rejected',
  /** The input the user typed in a journey form was not accepted (wrong code, missing field). */
  'invalid_input',
] as const;
export type ProviderErrorKind = (typeof PROVIDER_ERROR_KINDS)[number];

export class ProviderError extends Error {
  readonly kind: ProviderErrorKind;
  /** Text safe to show a client (no secrets, no provider internals). */
  readonly safeDetail: string;
  /**
   * For `rate_limited`: how long the provider asked us to wait, in milliseconds from when it
   * answered (undefined: it did not say). Relative, because the provider's clock and Mooring's
   * domain clock differ; the sync runner places it on the domain clock.
   */
  readonly retryAfterMs: number | undefined;
  /**
   * For `consent_expired`: when the upstream says the consent expired (undefined: it did not say).
   * The sync runner brings the connection's expiresAt forward to it, never past the sync's time.
   */
  readonly expiredAt: Date | undefined;
  /**
   * Raised on what the user's browser brought back to a journey's callback (its parameters: an
   * unreadable or unverifiable answer, an `error` it names), not on an answer to a call Mooring made
   * to the provider. Anyone driving the browser can send such a callback, so it says nothing about
   * whether the provider works (providers/health.ts journeyFailureIsProviders).
   */
  readonly fromCallback: boolean;
  constructor(kind: ProviderErrorKind, safeDetail: string, opts: { cause?: unknown; retryAfterMs?: number | undefined; expiredAt?: Date | undefined; fromCallback?: boolean } = {}) {
    super(`${kind}: ${safeDetail}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.safeDetail = safeDetail;
    this.retryAfterMs = opts.retryAfterMs;
    this.expiredAt = opts.expiredAt;
    this.fromCallback = opts.fromCallback ?? false;
  }
}

/** A field of a journey form that Mooring renders (legacy credentials, one-time code, an asset to value). */
export interface FormField {
  name: string;
  label: string;
  type: 'text' | 'password';
  /** Shown above the form, e.g. "Enter the code sent to your phone". */
  hint?: string;
}

/** What to do next in an authorisation journey. */
export type JourneyStep =
  /** Send the user's browser to the provider; it comes back to the callback URL with query parameters. */
  | { kind: 'redirect'; url: string; pending: JsonObject }
  /** Show the user a form on Mooring's page; its fields are posted back to `completeAuthorisation`. */
  | { kind: 'form'; fields: FormField[]; message?: string; pending: JsonObject }
  /** The provider granted access. `ref` is the provider's non-secret id of the grant. */
  | {
    kind: 'done'; grant: JsonObject; ref: string;
    /**
     * When the grant lapses at the provider, when the provider decides it (GoCardless: the
     * agreement's acceptance + its access_valid_for_days, capped by the institution). Absent: the
     * consent Mooring asked for (consentExpiresAt) is what the provider granted.
     */
    expiresAt?: Date;
  };

export interface StartAuthorisationInput {
  provider: CatalogEntry;
  /** Where the provider must send the user back (redirect journeys). */
  callbackUrl: string;
  /** Opaque value to echo back on the callback. */
  state: string;
  /** When the consent should expire, or null when the provider sets none. */
  consentExpiresAt: Date | null;
  /** For reauth/refresh: the existing grant, so the provider can re-authorise the same access. */
  existingGrant?: JsonObject;
  /** The domain clock's time (the consent time the provider's own limits count from). */
  now?: Date;
}

export interface CompleteAuthorisationInput {
  provider: CatalogEntry;
  pending: JsonObject;
  /** The callback's query parameters (redirect journeys) or the posted form fields (form journeys). */
  input: Record<string, string>;
  callbackUrl: string;
}

export interface ProviderAccount {
  providerAccountId: string;
  accountName: string;
  /** Moneyhub account type, e.g. "cash:current", "savings", "properties:residential". */
  type: string;
  accountType: 'personal' | 'business';
  currency: string;
  balanceMinor: number;
  balanceDate: Date;
  providerReference?: string;
  accountReference?: string;
  details?: JsonObject;
}

export interface ProviderTransaction {
  providerAccountId: string;
  providerTransactionId: string;
  amountMinor: number;
  currency: string;
  date: Date;
  status: 'posted' | 'pending';
  shortDescription: string;
  longDescription: string;
}

export interface FetchInput {
  provider: CatalogEntry;
  grant: JsonObject;
  /** The user is present (a sync requested with customerIpAddress, or a journey's first sync). */
  attended: boolean;
  /**
   * The present user's IP address, when known (a sync's `customerIpAddress`, the browser of a journey).
   * Open Banking sends it as x-fapi-customer-ip-address; ignored when not attended.
   */
  customerIpAddress?: string;
  /** Fetch transactions booked on or after this time (null: the full history the consent allows). */
  since: Date | null;
  /** The domain clock's time, for providers that need it. */
  now: Date;
}

export interface FetchResult {
  /** The grant, possibly with refreshed tokens; the runner stores it back. */
  grant: JsonObject;
  /**
   * The provider's as-of time for this data, or null when it gives none (the runner then uses the
   * retrieval time; it never lets lastUpdated move past the retrieval time).
   */
  asOf: Date | null;
  accounts: ProviderAccount[];
  transactions: ProviderTransaction[];
  /** True when some of the data could not be retrieved (the sync is `partial`). */
  partial: boolean;
  /** Safe explanation of what was missing, when partial. */
  partialDetail?: string;
  /**
   * The upstream's own limit on calls for this connection, when it reports one (GoCardless's
   * `HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_*` headers: successful calls per account and scope per day):
   * the fewest calls left for any account and scope seen in this fetch, and how long until that
   * window resets, in ms from the answer (relative, as the provider's clock is not the domain
   * clock). The runner stores it on the connection; the unattended budget and nextSyncAt respect it
   * (syncs/cadence.ts `syncBudget`). Absent: the upstream said nothing.
   */
  upstreamBudget?: { remaining: number; resetsInMs: number };
}

export interface ProviderAdapter {
  startAuthorisation(input: StartAuthorisationInput): Promise<JourneyStep>;
  completeAuthorisation(input: CompleteAuthorisationInput): Promise<JourneyStep>;
  fetch(input: FetchInput): Promise<FetchResult>;
  /** Revokes the grant at the provider; best effort (errors are ProviderErrors the caller may ignore). */
  revoke(provider: CatalogEntry, grant: JsonObject): Promise<void>;
}

/**
 * The adapters of a process: one for each kind this version implements (kinds.ts
 * IMPLEMENTED_ADAPTER_KINDS); the other kinds may be absent, and the providers file refuses
 * entries that name them.
 */
export type ProviderAdapters = Readonly<Record<ImplementedAdapterKind, ProviderAdapter>> & Readonly<Partial<Record<AdapterKind, ProviderAdapter>>>;

/** The adapter of a catalog entry (start-up made sure there is one). */
export function adapterFor(adapters: ProviderAdapters, provider: CatalogEntry): ProviderAdapter {
  const adapter = adapters[provider.adapter];
  if (adapter === undefined) throw new Error(`adapter ${provider.adapter} is not available in this version`);
  return adapter;
}
