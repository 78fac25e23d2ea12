/**
 * Per-adapter settings of a provider entry (SPEC section 10).
 */

/** `openbanking`: UK Open Banking Read/Write API (AIS v3.1.x) with FAPI 1.0 Advanced. */
export interface OpenBankingSettings {
  wellKnownUrl: string;
  resourceBaseUrl: string;
  clientId: string;
  tokenEndpointAuthMethod: 'private_key_jwt' | 'tls_client_auth';
  signingKey: string;
  signingKeyId: string;
  transportCert: string;
  transportKey: string;
  ca: string | null;
  financialId: string | null;
  responseType: 'code id_token' | 'code';
  permissions: string[];
}
