/**
 * The shapes Mooring accepts from an Open Banking bank (UK OB Read/Write API v3.1 AIS) and the shape
 * of its own grant. Only the fields Mooring reads are required; anything else is ignored.
 */
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';

const Currency = Type.String({ pattern: '^[A-Z]{3}$' });
const Amount = Type.Object({ Amount: Type.String(), Currency });
const CreditDebit = Type.Union([Type.Literal('Credit'), Type.Literal('Debit')]);
const Links = Type.Object({ Self: Type.Optional(Type.String()), Next: Type.Optional(Type.String()) });
const Meta = Type.Object({ LastAvailableDateTime: Type.Optional(Type.String()) });

export const TokenResponse = Compile(
  Type.Object({
    access_token: Type.String({ minLength: 1 }),
    token_type: Type.String(),
    expires_in: Type.Optional(Type.Number({ minimum: 0 })),
    refresh_token: Type.Optional(Type.String({ minLength: 1 })),
  }),
);

/** OBReadConsentResponse1: the statuses of an account-access consent. */
export const CONSENT_STATUSES = ['AwaitingAuthorisation', 'Authorised', 'Rejected', 'Revoked', 'Expired'] as const;
export const ConsentResponse = Compile(
  Type.Object({
    Data: Type.Object({
      ConsentId: Type.String({ minLength: 1, maxLength: 128 }),
      Status: Type.String(),
      StatusUpdateDateTime: Type.Optional(Type.String()),
      ExpirationDateTime: Type.Optional(Type.String()),
    }),
  }),
);

const ObAccount = Type.Object({
  AccountId: Type.String({ minLength: 1, maxLength: 40 }),
  Currency,
  AccountType: Type.Optional(Type.String()),
  AccountSubType: Type.Optional(Type.String()),
  Nickname: Type.Optional(Type.String()),
  Account: Type.Optional(Type.Array(Type.Object({ SchemeName: Type.String(), Identification: Type.String(), Name: Type.Optional(Type.String()) }))),
});
export type ObAccount = Static<typeof ObAccount>;

export const AccountsResponse = Compile(
  Type.Object({ Data: Type.Object({ Account: Type.Optional(Type.Array(ObAccount)) }), Links: Type.Optional(Links), Meta: Type.Optional(Meta) }),
);

const ObBalance = Type.Object({
  AccountId: Type.String(),
  Amount,
  CreditDebitIndicator: CreditDebit,
  Type: Type.String(),
  DateTime: Type.String(),
});
export type ObBalance = Static<typeof ObBalance>;

export const BalancesResponse = Compile(
  Type.Object({ Data: Type.Object({ Balance: Type.Array(ObBalance) }), Links: Type.Optional(Links), Meta: Type.Optional(Meta) }),
);

const ObTransaction = Type.Object({
  AccountId: Type.String(),
  TransactionId: Type.Optional(Type.String({ minLength: 1, maxLength: 210 })),
  TransactionReference: Type.Optional(Type.String()),
  Amount,
  CreditDebitIndicator: CreditDebit,
  Status: Type.String(),
  BookingDateTime: Type.String(),
  TransactionInformation: Type.Optional(Type.String()),
  MerchantDetails: Type.Optional(Type.Object({ MerchantName: Type.Optional(Type.String()) })),
});
export type ObTransaction = Static<typeof ObTransaction>;

export const TransactionsResponse = Compile(
  Type.Object({
    Data: Type.Object({ Transaction: Type.Optional(Type.Array(ObTransaction)) }),
    Links: Type.Optional(Links),
    Meta: Type.Optional(Meta),
  }),
);

/** What Mooring keeps for an Open Banking connection (stored by the runner, never shown). */
const GrantSchema = Type.Object({
  consentId: Type.String({ minLength: 1 }),
  accessToken: Type.String({ minLength: 1 }),
  /** Real time, ISO 8601: token lifetimes do not follow the domain clock. */
  accessTokenExpiresAt: Type.String(),
  refreshToken: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
  /** When the user last authenticated at the bank through Mooring (ID token auth_time), ISO 8601; sent as x-fapi-auth-date. */
  authTime: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});
export type ObGrant = Static<typeof GrantSchema>;
export const ObGrant = Compile(GrantSchema);

export const ObPending = Compile(
  Type.Object({
    consentId: Type.String({ minLength: 1 }),
    state: Type.String(),
    nonce: Type.String({ minLength: 1 }),
    codeVerifier: Type.String({ minLength: 43 }),
    previousConsentId: Type.Optional(Type.String()),
  }),
);
