/**
 * The shapes Mooring accepts from the Enable Banking API (its OpenAPI document, "API reference"),
 * and the shapes of its own grant and pending journey state. Only the fields Mooring reads are
 * required; anything else is ignored.
 */
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';

/** SessionStatus (the API's enum). */
export const EB_SESSION_STATUSES = ['PENDING_AUTHORIZATION', 'RETURNED_FROM_BANK', 'AUTHORIZED', 'EXPIRED', 'REVOKED', 'CANCELLED', 'CLOSED', 'INVALID'] as const;
export type EbSessionStatus = (typeof EB_SESSION_STATUSES)[number];

/** CashAccountType (ISO 20022 codes the API uses). */
export const EB_CASH_ACCOUNT_TYPES = ['CACC', 'CASH', 'CARD', 'LOAN', 'SVGS', 'OTHR'] as const;

const Currency = Type.String({ pattern: '^[A-Z]{3}$' });
const AmountType = Type.Object({ currency: Currency, amount: Type.String() });
const AccountIdentification = Type.Object({
  iban: Type.Optional(Type.String()),
  other: Type.Optional(Type.Object({ identification: Type.String(), scheme_name: Type.Optional(Type.String()) })),
});

export const ErrorBody = Compile(
  Type.Object({
    message: Type.Optional(Type.String()),
    code: Type.Optional(Type.Number()),
    error: Type.Optional(Type.String()),
  }),
);

export const ApplicationResponse = Compile(
  Type.Object({
    name: Type.String(),
    kid: Type.String(),
    environment: Type.String(),
    redirect_urls: Type.Array(Type.String()),
    active: Type.Boolean(),
    services: Type.Optional(Type.Array(Type.String())),
  }),
);

const Aspsp = Type.Object({
  name: Type.String(),
  country: Type.String(),
  psu_types: Type.Optional(Type.Array(Type.String())),
  maximum_consent_validity: Type.Integer({ minimum: 0 }),
  required_psu_headers: Type.Optional(Type.Array(Type.String())),
  beta: Type.Optional(Type.Boolean()),
});
export type EbAspsp = Static<typeof Aspsp>;
export const AspspsResponse = Compile(Type.Object({ aspsps: Type.Array(Aspsp) }));

export const StartAuthorizationResponse = Compile(
  Type.Object({ url: Type.String({ minLength: 1 }), authorization_id: Type.String() }),
);

const AccountResource = Type.Object({
  uid: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  identification_hash: Type.String({ minLength: 1, maxLength: 256 }),
  account_id: Type.Optional(AccountIdentification),
  name: Type.Optional(Type.String()),
  details: Type.Optional(Type.String()),
  product: Type.Optional(Type.String()),
  usage: Type.Optional(Type.String()),
  cash_account_type: Type.String(),
  currency: Currency,
});
export type EbAccount = Static<typeof AccountResource>;

const Access = Type.Object({ valid_until: Type.String() });

export const AuthorizeSessionResponse = Compile(
  Type.Object({
    session_id: Type.String({ minLength: 1, maxLength: 128 }),
    accounts: Type.Array(AccountResource),
    access: Access,
  }),
);

export const SessionResponse = Compile(
  Type.Object({
    status: Type.String(),
    access: Access,
  }),
);

const Balance = Type.Object({
  name: Type.Optional(Type.String()),
  balance_amount: AmountType,
  balance_type: Type.String(),
  last_change_date_time: Type.Optional(Type.String()),
  reference_date: Type.Optional(Type.String()),
});
export type EbBalance = Static<typeof Balance>;
export const BalancesResponse = Compile(Type.Object({ balances: Type.Array(Balance) }));

const Party = Type.Object({ name: Type.Optional(Type.String()) });
const Transaction = Type.Object({
  entry_reference: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  transaction_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  transaction_amount: AmountType,
  credit_debit_indicator: Type.Union([Type.Literal('CRDT'), Type.Literal('DBIT')]),
  status: Type.String(),
  booking_date: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  value_date: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  transaction_date: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  remittance_information: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Null()])),
  creditor: Type.Optional(Type.Union([Party, Type.Null()])),
  debtor: Type.Optional(Type.Union([Party, Type.Null()])),
});
export type EbTransaction = Static<typeof Transaction>;
export const TransactionsResponse = Compile(
  Type.Object({
    transactions: Type.Array(Transaction),
    continuation_key: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  }),
);

/** What Mooring keeps of an Enable Banking session (stored encrypted as the connection's grant). */
const EbGrantSchema = Type.Object({
  sessionId: Type.String({ minLength: 1 }),
  validUntil: Type.String(),
  /** The session's accounts as POST /sessions listed them (`uid` for the calls, `identification_hash` as identity). */
  accounts: Type.Array(AccountResource),
  /** The bank's required_psu_headers (all or none of them may be sent). */
  requiredPsuHeaders: Type.Optional(Type.Array(Type.String())),
});
export type EbGrant = Static<typeof EbGrantSchema>;
export const EbGrant = Compile(EbGrantSchema);

/** The journey state between POST /auth and the callback. */
const EbPendingSchema = Type.Object({
  state: Type.String(),
  authorizationId: Type.String(),
  validUntil: Type.String(),
  previousSessionId: Type.Optional(Type.String()),
  requiredPsuHeaders: Type.Optional(Type.Array(Type.String())),
});
export type EbPending = Static<typeof EbPendingSchema>;
export const EbPending = Compile(EbPendingSchema);
