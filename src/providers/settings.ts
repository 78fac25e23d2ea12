/**
 * Per-adapter settings of a configured provider (SPEC section 10), resolved: secrets already read
 * from their `env` or `file` references.
 */

export interface OpenBankingSettings {
  /** The bank's OpenID discovery document. */
  wellKnownUrl: string;
  /** The AIS base, e.g. https://api.bank.example/open-banking/v3.1/aisp */
  resourceBaseUrl: string;
  clientId: string;
  tokenEndpointAuthMethod: 'private_key_jwt' | 'tls_client_auth';
  /** PEM, the PS256 key request objects and client assertions are signed with. */
  signingKey: string;
  signingKeyId: string;
  /** PEM: the transport certificate and key presented on every machine-facing call (mutual TLS). */
  transportCert: string;
  transportKey: string;
  /** Extra trust roots (PEM bundle), added to the system's. */
  ca: string | null;
  /** Sent as x-fapi-financial-id. */
  financialId: string | null;
  responseType: 'code id_token' | 'code';
  permissions: string[];
}
