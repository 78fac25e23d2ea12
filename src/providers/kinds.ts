/**
 * Provider kinds and the constants every layer shares (SPEC sections 5 and 7). A leaf module: it
 * imports nothing of ours, so the catalog, the connection rules and the sync cadence can all
 * depend on it without depending on each other.
 */

export const PROVIDER_TYPES = ['api', 'legacy', 'test', 'zoopla', 'mouseprice', 'autotrader'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

export const AVAILABILITY = ['AVAILABLE', 'PARTIALLY_AVAILABLE', 'TEMPORARILY_UNAVAILABLE', 'PERMANENTLY_UNAVAILABLE'] as const;
export type Availability = (typeof AVAILABILITY)[number];

export type AdapterKind = 'openbanking' | 'legacy' | 'valuation' | 'enablebanking' | 'gocardless';
/** The adapters an operator's providers file may name (SPEC section 10). */
export const FILE_ADAPTER_KINDS = ['openbanking', 'enablebanking', 'gocardless'] as const satisfies readonly AdapterKind[];
export type FileAdapterKind = (typeof FILE_ADAPTER_KINDS)[number];
/** The adapter kinds this version implements (registry.ts must create each); the providers file may use only these. */
export const IMPLEMENTED_ADAPTER_KINDS = ['openbanking', 'legacy', 'valuation', 'enablebanking', 'gocardless'] as const satisfies readonly AdapterKind[];
export type ImplementedAdapterKind = (typeof IMPLEMENTED_ADAPTER_KINDS)[number];

export type ValuationType = Extract<ProviderType, 'zoopla' | 'mouseprice' | 'autotrader'>;
export const isValuationType = (t: ProviderType): t is ValuationType => t === 'zoopla' || t === 'mouseprice' || t === 'autotrader';

/**
 * What a provider's cadence (SPEC section 5) is decided by: its type, unless the providers file
 * sets it for the provider (unattended syncs per rolling 24 hours, staleness window in hours).
 * A catalog entry is one; a bare type stands for a provider with the type's cadence.
 */
export interface CadenceOf {
  type: ProviderType;
  unattendedSyncsPerDay?: number | undefined;
  staleAfterHours?: number | undefined;
}
export const cadenceOf = (p: ProviderType | CadenceOf): CadenceOf => (typeof p === 'string' ? { type: p } : p);

/** Consent length for providers that set one (the UK Open Banking 90-day rule). */
export const CONSENT_DAYS = 90;

/**
 * Adapters whose consent is an agreement at the provider with its own end (GoCardless's end-user
 * agreement, Enable Banking's session and its valid_until): renewing it (reconsent) means a new authorisation there, never only a new date at Mooring.
 */
export const renewsConsentAtProvider = (adapter: AdapterKind): boolean => adapter === 'gocardless' || adapter === 'enablebanking';
