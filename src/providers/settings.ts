/**
 * The per-adapter settings of an operator's provider entry (SPEC section 10), read and checked from
 * the providers file's values: types, defaults, URLs, PEM keys and certificates. Secrets arrive
 * here already read from their `{ "env" }` or `{ "file" }` reference; the file's own structure
 * (entries, defaults, references) is providers-file.ts.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';

export const OB_RESPONSE_TYPES = ['code id_token', 'code'] as const;
export const OB_TOKEN_AUTH_METHODS = ['private_key_jwt', 'tls_client_auth'] as const;

/** The Read/Write API's account-access permission codes (OBExternalPermissions1Code, v3.1). */
export const OB_PERMISSIONS = [
  'ReadAccountsBasic', 'ReadAccountsDetail', 'ReadBalances', 'ReadBeneficiariesBasic', 'ReadBeneficiariesDetail',
  'ReadDirectDebits', 'ReadOffers', 'ReadPAN', 'ReadParty', 'ReadPartyPSU', 'ReadProducts',
  'ReadScheduledPaymentsBasic', 'ReadScheduledPaymentsDetail', 'ReadStandingOrdersBasic', 'ReadStandingOrdersDetail',
  'ReadStatementsBasic', 'ReadStatementsDetail', 'ReadTransactionsBasic', 'ReadTransactionsCredits',
  'ReadTransactionsDebits', 'ReadTransactionsDetail',
] as const;

/** What the account, balance and transaction endpoints need. */
export const DEFAULT_OB_PERMISSIONS: readonly string[] = [
  'ReadAccountsBasic', 'ReadAccountsDetail', 'ReadBalances',
  'ReadTransactionsBasic', 'ReadTransactionsCredits', 'ReadTransactionsDebits', 'ReadTransactionsDetail',
];

export interface OpenBankingSettings {
  /** The bank's OpenID discovery document. */
  wellKnownUrl: string;
  /** e.g. https://api.bank.example/open-banking/v3.1/aisp (no trailing slash). */
  resourceBaseUrl: string;
  clientId: string;
  tokenEndpointAuthMethod: 'private_key_jwt' | 'tls_client_auth';
  /** PEM, RSA (PS256). */
  signingKey: string;
  signingKeyId: string;
  /** PEM certificate (a chain allowed, the leaf first) for mutual TLS. */
  transportCert: string;
  /** PEM private key of transportCert. */
  transportKey: string;
  /** Extra trust roots (a PEM bundle), or null for the system's. */
  ca: string | null;
  /** Sent as x-fapi-financial-id when set. */
  financialId: string | null;
  responseType: 'code id_token' | 'code';
  permissions: string[];
}

export const EB_PSU_TYPES = ['personal', 'business'] as const;
export const DEFAULT_ENABLEBANKING_API_URL = 'https://api.enablebanking.com';

export interface EnableBankingSettings {
  apiUrl: string;
  applicationId: string;
  /** PEM, RSA (RS256): the application's key. */
  privateKey: string;
  /** The bank as Enable Banking names it. */
  aspsp: { name: string; country: string };
  psuType: 'personal' | 'business';
}

export const GC_ACCESS_SCOPES = ['balances', 'details', 'transactions'] as const;
export const DEFAULT_GOCARDLESS_API_URL = 'https://bankaccountdata.gocardless.com/api/v2';
/** GoCardless accepts at most this many days of history (its documented maximum). */
export const GC_MAX_HISTORICAL_DAYS = 730;

export interface GoCardlessSettings {
  apiUrl: string;
  secretId: string;
  secretKey: string;
  institutionId: string;
  maxHistoricalDays: number;
  accessScope: ('balances' | 'details' | 'transactions')[];
}

/** Fields that hold secrets: the providers file may only name them by reference. */
export const SECRET_FIELDS: readonly string[] = ['signingKey', 'transportKey', 'privateKey', 'secretKey', 'secretId', 'clientSecret'];

/** The settings fields each file adapter knows; any other field of an entry's settings is refused. */
export const SETTINGS_FIELDS = {
  openbanking: ['wellKnownUrl', 'resourceBaseUrl', 'clientId', 'tokenEndpointAuthMethod', 'signingKey', 'signingKeyId', 'transportCert', 'transportKey', 'ca', 'financialId', 'responseType', 'permissions'],
  enablebanking: ['apiUrl', 'applicationId', 'privateKey', 'aspsp', 'psuType'],
  gocardless: ['apiUrl', 'secretId', 'secretKey', 'institutionId', 'maxHistoricalDays', 'accessScope'],
} as const satisfies Record<string, readonly string[]>;

/** A value whose problem has already been recorded. */
export const REPORTED: unique symbol = Symbol('reported');

/** Where a reader gets one field's value and records what is wrong with it. */
export interface FieldSource {
  /** The field's value (references resolved); undefined when absent; REPORTED when it could not be read. */
  get(field: string): unknown;
  problem(field: string, message: string): void;
}

type Read<T> = T | undefined;

const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : JSON.stringify(v));

export function readString(src: FieldSource, field: string, opts: { fallback?: string | null; pattern?: RegExp; hint?: string } = {}): Read<string> {
  const v = src.get(field);
  if (v === REPORTED) return undefined;
  if (v === undefined) {
    if (opts.fallback !== undefined && opts.fallback !== null) return opts.fallback;
    src.problem(field, 'is required');
    return undefined;
  }
  if (typeof v !== 'string' || v.trim() === '') {
    src.problem(field, `must be a non-empty string (got ${describe(v)})`);
    return undefined;
  }
  if (opts.pattern !== undefined && !opts.pattern.test(v)) {
    src.problem(field, `${opts.hint ?? `must match ${String(opts.pattern)}`} (got ${JSON.stringify(v)})`);
    return undefined;
  }
  return v;
}

/** A string, or null when absent or null; undefined only on a problem. */
export function readNullableString(src: FieldSource, field: string): Read<string | null> {
  const v = src.get(field);
  if (v === REPORTED) return undefined;
  if (v === undefined || v === null) return null;
  return readString(src, field);
}

export function readHttpUrl(src: FieldSource, field: string, fallback?: string): Read<string> {
  const v = readString(src, field, fallback === undefined ? {} : { fallback });
  if (v === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    src.problem(field, `must be an absolute http(s) URL (got ${JSON.stringify(v)})`);
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    src.problem(field, `must be an http(s) URL (got ${JSON.stringify(v)})`);
    return undefined;
  }
  return v.replace(/\/+$/, '');
}

export function readOneOf<T extends string>(src: FieldSource, field: string, allowed: readonly T[], fallback?: T): Read<T> {
  const v = src.get(field);
  if (v === REPORTED) return undefined;
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  src.problem(field, v === undefined ? `is required (one of ${allowed.join(', ')})` : `must be one of ${allowed.join(', ')} (got ${describe(v)})`);
  return undefined;
}

export function readBoolean(src: FieldSource, field: string, fallback: boolean): Read<boolean> {
  const v = src.get(field);
  if (v === REPORTED) return undefined;
  if (v === undefined) return fallback;
  if (typeof v === 'boolean') return v;
  src.problem(field, `must be true or false (got ${describe(v)})`);
  return undefined;
}

export function readInteger(src: FieldSource, field: string, fallback: number, min: number, max: number): Read<number> {
  const v = src.get(field);
  if (v === REPORTED) return undefined;
  if (v === undefined) return fallback;
  if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
  src.problem(field, `must be a whole number from ${min} to ${max} (got ${describe(v)})`);
  return undefined;
}

/** A list of strings, each from `allowed` when given, no repeats, at least one. */
export function readStringList<T extends string>(src: FieldSource, field: string, fallback: readonly T[], allowed?: readonly T[]): Read<T[]> {
  const v = src.get(field);
  if (v === REPORTED) return undefined;
  if (v === undefined) return [...fallback];
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string' && x !== '')) {
    src.problem(field, `must be a non-empty list of strings (got ${describe(v)})`);
    return undefined;
  }
  const unknown = allowed === undefined ? [] : v.filter((x) => !(allowed as readonly unknown[]).includes(x));
  if (unknown.length > 0) {
    src.problem(field, `unknown value(s) ${unknown.map((x) => JSON.stringify(x)).join(', ')} (allowed: ${(allowed ?? []).join(', ')})`);
    return undefined;
  }
  if (new Set(v).size !== v.length) {
    src.problem(field, 'lists a value twice');
    return undefined;
  }
  return v as T[];
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function parsePrivateKey(src: FieldSource, field: string, pem: string, usage: string): KeyObject | undefined {
  if (!pem.includes('-----BEGIN')) {
    src.problem(field, 'is not a PEM private key (no -----BEGIN line)');
    return undefined;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    src.problem(field, `is not a readable PEM private key (${errorText(err)}); an unencrypted PKCS#8 or PKCS#1 key is needed`);
    return undefined;
  }
  if (usage === 'rsa') {
    if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') {
      src.problem(field, `must be an RSA key (got ${key.asymmetricKeyType ?? 'unknown'})`);
      return undefined;
    }
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) {
      src.problem(field, `must be an RSA key of at least 2048 bits (got ${bits})`);
      return undefined;
    }
  }
  return key;
}

/** A PEM private key (`rsa`: RSA of at least 2048 bits, for PS256/RS256). */
export function readPrivateKey(src: FieldSource, field: string, usage: 'rsa' | 'any'): Read<{ pem: string; key: KeyObject }> {
  const pem = readString(src, field);
  if (pem === undefined) return undefined;
  const key = parsePrivateKey(src, field, pem, usage);
  return key === undefined ? undefined : { pem, key };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** PEM certificates (one or more, each readable); answers the first. */
function readCertificates(src: FieldSource, field: string, pem: string): X509Certificate | undefined {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    src.problem(field, 'is not a PEM certificate (no -----BEGIN CERTIFICATE----- block)');
    return undefined;
  }
  const parsed: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      parsed.push(new X509Certificate(block));
    } catch (err) {
      src.problem(field, `certificate ${i + 1} of ${blocks.length} cannot be read (${errorText(err)})`);
      return undefined;
    }
  }
  return parsed[0];
}

export function readCertificate(src: FieldSource, field: string): Read<{ pem: string; cert: X509Certificate }> {
  const pem = readString(src, field);
  if (pem === undefined) return undefined;
  const cert = readCertificates(src, field, pem);
  return cert === undefined ? undefined : { pem, cert };
}

function readCaBundle(src: FieldSource, field: string): Read<string | null> {
  const pem = readNullableString(src, field);
  if (pem === undefined || pem === null) return pem;
  return readCertificates(src, field, pem) === undefined ? undefined : pem;
}

/** Every value defined, or null (each missing one has recorded its problem). */
function complete<T extends object>(o: { [K in keyof T]: T[K] | undefined }): T | null {
  return Object.values(o).some((v) => v === undefined) ? null : (o as T);
}

export function readOpenBankingSettings(src: FieldSource): OpenBankingSettings | null {
  // Read in the file's order, so that the problems are listed in it.
  const wellKnownUrl = readHttpUrl(src, 'wellKnownUrl');
  const resourceBaseUrl = readHttpUrl(src, 'resourceBaseUrl');
  const clientId = readString(src, 'clientId');
  const tokenEndpointAuthMethod = readOneOf(src, 'tokenEndpointAuthMethod', OB_TOKEN_AUTH_METHODS);
  const signingKey = readPrivateKey(src, 'signingKey', 'rsa');
  const signingKeyId = readString(src, 'signingKeyId');
  const transportCert = readCertificate(src, 'transportCert');
  const transportKey = readPrivateKey(src, 'transportKey', 'any');
  let transportKeyPem = transportKey?.pem;
  if (transportCert !== undefined && transportKey !== undefined && !transportCert.cert.checkPrivateKey(transportKey.key)) {
    src.problem('transportKey', "does not match transportCert (the certificate's public key is not this key's)");
    transportKeyPem = undefined;
  }
  return complete<OpenBankingSettings>({
    wellKnownUrl,
    resourceBaseUrl,
    clientId,
    tokenEndpointAuthMethod,
    signingKey: signingKey?.pem,
    signingKeyId,
    transportCert: transportCert?.pem,
    transportKey: transportKeyPem,
    ca: readCaBundle(src, 'ca'),
    financialId: readNullableString(src, 'financialId'),
    responseType: readOneOf(src, 'responseType', OB_RESPONSE_TYPES, 'code id_token'),
    permissions: readStringList<string>(src, 'permissions', DEFAULT_OB_PERMISSIONS, OB_PERMISSIONS),
  });
}

function readAspsp(src: FieldSource): Read<{ name: string; country: string }> {
  const v = src.get('aspsp');
  if (v === REPORTED) return undefined;
  if (v === undefined) {
    src.problem('aspsp', 'is required ({ "name": "…", "country": "GB" }, the bank as Enable Banking names it)');
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    src.problem('aspsp', `must be an object { "name", "country" } (got ${describe(v)})`);
    return undefined;
  }
  const o = v as Record<string, unknown>;
  const inner: FieldSource = { get: (f) => o[f], problem: (f, m) => src.problem(`aspsp.${f}`, m) };
  for (const extra of Object.keys(o).filter((k) => k !== 'name' && k !== 'country')) src.problem(`aspsp.${extra}`, 'unknown field (expected name and country)');
  const aspsp = complete<{ name: string; country: string }>({
    name: readString(inner, 'name'),
    country: readString(inner, 'country', { pattern: /^[A-Z]{2}$/, hint: 'must be a two-letter ISO 3166 country code such as GB or FI' }),
  });
  return aspsp ?? undefined;
}

export function readEnableBankingSettings(src: FieldSource): EnableBankingSettings | null {
  return complete<EnableBankingSettings>({
    apiUrl: readHttpUrl(src, 'apiUrl', DEFAULT_ENABLEBANKING_API_URL),
    applicationId: readString(src, 'applicationId'),
    privateKey: readPrivateKey(src, 'privateKey', 'rsa')?.pem,
    aspsp: readAspsp(src),
    psuType: readOneOf(src, 'psuType', EB_PSU_TYPES, 'personal'),
  });
}

export function readGoCardlessSettings(src: FieldSource): GoCardlessSettings | null {
  return complete<GoCardlessSettings>({
    apiUrl: readHttpUrl(src, 'apiUrl', DEFAULT_GOCARDLESS_API_URL),
    secretId: readString(src, 'secretId'),
    secretKey: readString(src, 'secretKey'),
    institutionId: readString(src, 'institutionId'),
    maxHistoricalDays: readInteger(src, 'maxHistoricalDays', 90, 1, GC_MAX_HISTORICAL_DAYS),
    accessScope: readStringList(src, 'accessScope', GC_ACCESS_SCOPES, GC_ACCESS_SCOPES),
  });
}
