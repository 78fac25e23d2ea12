/**
 * The OpenBankingSettings of a built-in sandbox Open Banking bank: what Mooring's Open Banking
 * adapter needs to reach it as it would reach a real FAPI bank (SPEC section 10, sandbox).
 */
import { createHash } from 'node:crypto';
import type { OpenBankingSettings } from '../../providers/settings.ts';
import type { SandboxPki } from '../pki.ts';

/** The client every sandbox bank registers for Mooring with private_key_jwt, and the one with tls_client_auth. */
export const SANDBOX_OB_CLIENT_ID = 'mooring';
export const SANDBOX_OB_TLS_CLIENT_ID = 'mooring-tls';

/** The read permissions the account, balance and transaction endpoints need. */
export const SANDBOX_OB_PERMISSIONS = [
  'ReadAccountsBasic', 'ReadAccountsDetail', 'ReadBalances',
  'ReadTransactionsBasic', 'ReadTransactionsCredits', 'ReadTransactionsDebits', 'ReadTransactionsDetail',
];

export interface SandboxBankUrls {
  /** Mooring's PUBLIC_URL (the banks' websites: discovery, authorise page). */
  publicUrl: string;
  /** `https://<PUBLIC_URL host>:<sandboxMtlsPort>`: the banks' mutual-TLS listener. */
  mtlsUrl: string;
}

/** The Account and Transaction API's routes on the banks' mutual-TLS listener. */
export const AISP_PATH = '/sandbox/ob/:slug/open-banking/v3.1/aisp';

export const sandboxIssuer = (publicUrl: string, slug: string): string => `${publicUrl.replace(/\/+$/, '')}/sandbox/ob/${slug}`;
export const sandboxMtlsBase = (mtlsUrl: string, slug: string): string => `${mtlsUrl.replace(/\/+$/, '')}/sandbox/ob/${slug}`;
export const sandboxResourceBase = (mtlsUrl: string, slug: string): string => `${sandboxMtlsBase(mtlsUrl, slug)}/open-banking/v3.1/aisp`;

/** The mTLS listener's URL for a PUBLIC_URL and port. */
export function sandboxMtlsUrl(publicUrl: string, port: number): string {
  const u = new URL(publicUrl);
  return `https://${u.hostname.includes(':') && !u.hostname.startsWith('[') ? `[${u.hostname}]` : u.hostname}:${port}`;
}

/** A stable 18-character OB organisation id for the bank (x-fapi-financial-id). */
export const sandboxFinancialId = (slug: string): string =>
  `0015800001041RE${createHash('sha256').update(slug).digest('hex').slice(0, 3).toUpperCase()}`;

export function sandboxOpenBankingSettings(pki: SandboxPki, urls: SandboxBankUrls, slug: string): OpenBankingSettings {
  return {
    wellKnownUrl: `${sandboxIssuer(urls.publicUrl, slug)}/.well-known/openid-configuration`,
    resourceBaseUrl: sandboxResourceBase(urls.mtlsUrl, slug),
    clientId: SANDBOX_OB_CLIENT_ID,
    tokenEndpointAuthMethod: 'private_key_jwt',
    signingKey: pki.signingKey,
    signingKeyId: pki.signingKeyId,
    transportCert: pki.clientCert,
    transportKey: pki.clientKey,
    ca: pki.caCert,
    financialId: sandboxFinancialId(slug),
    responseType: 'code',
    permissions: [...SANDBOX_OB_PERMISSIONS],
  };
}
