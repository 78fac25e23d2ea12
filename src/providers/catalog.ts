/**
 * The provider catalog: every provider a user can connect to. It lists the operator's providers
 * (the providers file, SPEC section 10, read by providers-file.ts) and, in sandbox mode, the
 * sandbox providers of SPEC section 7, whose ids are stable across restarts.
 */
import { createHash } from 'node:crypto';
import { CONSENT_DAYS, isValuationType, type AdapterKind, type ProviderType } from './kinds.ts';
import type { EnableBankingSettings, GoCardlessSettings, OpenBankingSettings } from './settings.ts';

export interface CatalogEntry {
  id: string;
  name: string;
  type: ProviderType;
  bankRef: string;
  adapter: AdapterKind;
  /** Consent length in days, or null where the provider sets no expiry. */
  consentDays: number | null;
  /** Renewal needs only the user's consent to the client (reconsent), not re-authentication at the bank. */
  tppConsent: boolean;
  isBeta: boolean;
  accountTypes: { name: string; beta: boolean }[];
  userTypes: ('personal' | 'business')[];
  payments: 'domestic'[];
  /** Base URL of the provider's API (the sandbox bank for sandbox providers). */
  baseUrl: string;
  /** A sandbox provider (served by Mooring's sandbox banks) or one from the operator's providers file. */
  origin: 'sandbox' | 'file';
  /** The provider's icon; absent: Mooring draws one (/bank-icons/<bankRef>). */
  iconUrl?: string;
  /** Providers file: unattended syncs per rolling 24 hours per connection; absent: the type's (syncs/cadence.ts). */
  unattendedSyncsPerDay?: number;
  /** Providers file: hours without new data before a connection is stale; absent: the type's (connections/status.ts). */
  staleAfterHours?: number;
  /** The adapter's settings (secrets read), for the adapter kind of the same name. */
  openbanking?: OpenBankingSettings;
  enablebanking?: EnableBankingSettings;
  gocardless?: GoCardlessSettings;
}

export const MODELO_ID = '1ffe704d39629a929c8e293880fb449a';


/** A stable 32-hex id derived from the provider's name. */
const stableId = (name: string): string => createHash('md5').update(`mooring-sandbox:${name}`).digest('hex');

interface SandboxProviderSeed {
  name: string;
  slug: string;
  type: ProviderType;
  expires: boolean;
  tppConsent: boolean;
  accountTypes: string[];
  id?: string;
}

const SANDBOX_PROVIDERS: SandboxProviderSeed[] = [
  { name: 'Modelo Open Banking Mock', slug: 'modelo', type: 'test', expires: true, tppConsent: true, accountTypes: ['cash:current', 'savings', 'card'], id: MODELO_ID },
  { name: 'Nationwide Open Banking', slug: 'nationwide', type: 'api', expires: true, tppConsent: false, accountTypes: ['cash:current', 'savings', 'card'] },
  { name: 'Handelsbanken', slug: 'handelsbanken', type: 'api', expires: false, tppConsent: false, accountTypes: ['cash:current', 'savings'] },
  { name: 'PensionBee', slug: 'pensionbee', type: 'api', expires: false, tppConsent: false, accountTypes: ['pension'] },
  { name: 'Société Générale', slug: 'societe-generale', type: 'api', expires: false, tppConsent: false, accountTypes: ['cash:current'] },
  { name: 'Aviva', slug: 'aviva', type: 'legacy', expires: false, tppConsent: false, accountTypes: ['pension', 'investment'] },
  { name: 'Zoopla', slug: 'zoopla', type: 'zoopla', expires: true, tppConsent: true, accountTypes: ['properties:residential'] },
  { name: 'Mouseprice', slug: 'mouseprice', type: 'mouseprice', expires: true, tppConsent: true, accountTypes: ['properties:residential'] },
  { name: 'Autotrader', slug: 'autotrader', type: 'autotrader', expires: true, tppConsent: true, accountTypes: ['asset'] },
];

const adapterFor = (type: ProviderType): AdapterKind =>
  type === 'legacy' ? 'legacy' : isValuationType(type) ? 'valuation' : 'openbanking';

/**
 * The sandbox catalog; `publicUrl` locates the sandbox banks, which Mooring serves itself.
 * `openbankingFor(slug)` gives a sandbox Open Banking bank's client settings, when it has any.
 */
export function sandboxCatalog(publicUrl: string, openbankingFor?: (slug: string) => OpenBankingSettings | undefined): CatalogEntry[] {
  return SANDBOX_PROVIDERS.map((p) => {
    const adapter = adapterFor(p.type);
    const openbanking = adapter === 'openbanking' ? openbankingFor?.(p.slug) : undefined;
    return {
      id: p.id ?? stableId(p.name),
      name: p.name,
      type: p.type,
      bankRef: p.slug,
      adapter,
      consentDays: p.expires ? CONSENT_DAYS : null,
      tppConsent: p.tppConsent,
      isBeta: false,
      accountTypes: p.accountTypes.map((name) => ({ name, beta: false })),
      userTypes: ['personal'],
      payments: [],
      baseUrl: `${publicUrl}/sandbox/${adapter === 'openbanking' ? 'ob' : adapter}/${p.slug}`,
      origin: 'sandbox' as const,
      ...(openbanking !== undefined ? { openbanking } : {}),
    };
  });
}

export interface Catalog {
  all(): CatalogEntry[];
  get(id: string): CatalogEntry | undefined;
}

/** The catalog of `entries`, whose ids must be unique (the providers file's check makes them so). */
export function createCatalog(entries: CatalogEntry[]): Catalog {
  const byId = new Map(entries.map((e) => [e.id, e]));
  if (byId.size !== entries.length) throw new Error('two catalog entries have the same id');
  return { all: () => entries, get: (id) => byId.get(id) };
}

/** The sandbox providers of `catalog`, read from it on every call (the sandbox banks serve only these). */
export function sandboxOnly(catalog: Catalog): Catalog {
  return {
    all: () => catalog.all().filter((e) => e.origin === 'sandbox'),
    get: (id) => {
      const entry = catalog.get(id);
      return entry?.origin === 'sandbox' ? entry : undefined;
    },
  };
}
