/**
 * The shapes Mooring accepts from GoCardless Bank Account Data (API v2) and the shapes of its own
 * grant and pending journey state. Only the fields Mooring reads are required; numbers GoCardless
 * sends as strings (institution limits) stay strings here and are parsed where used.
 */
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';

export const TokenPair = Compile(
  Type.Object({
    access: Type.String({ minLength: 1 }),
    access_expires: Type.Number({ minimum: 0 }),
    refresh: Type.String({ minLength: 1 }),
    refresh_expires: Type.Number({ minimum: 0 }),
  }),
);

export const TokenRefresh = Compile(Type.Object({ access: Type.String({ minLength: 1 }), access_expires: Type.Number({ minimum: 0 }) }));

const NumberString = Type.Union([Type.String({ pattern: '^[0-9]+$' }), Type.Integer({ minimum: 0 })]);

const InstitutionSchema = Type.Object({
    id: Type.String({ minLength: 1 }),
    name: Type.String(),
    transaction_total_days: Type.Optional(NumberString),
    max_access_valid_for_days: Type.Optional(NumberString),
  });
export const Institution = Compile(InstitutionSchema);
export type GcInstitution = Static<typeof InstitutionSchema>;

const AgreementSchema = Type.Object({
    id: Type.String({ minLength: 1, maxLength: 100 }),
    max_historical_days: Type.Integer(),
    access_valid_for_days: Type.Integer({ minimum: 1 }),
    access_scope: Type.Array(Type.String()),
    accepted: Type.Union([Type.String(), Type.Null()]),
  });
export const Agreement = Compile(AgreementSchema);
export type GcAgreement = Static<typeof AgreementSchema>;

/** GoCardless's requisition statuses (GC-STATUS, plus the undocumented ID, ER, SU of its OpenAPI enum). */
export const REQUISITION_STATUSES = ['CR', 'ID', 'ER', 'EX', 'RJ', 'UA', 'GA', 'SA', 'GC', 'LN', 'SU'] as const;
export type RequisitionStatus = (typeof REQUISITION_STATUSES)[number];

const RequisitionSchema = Type.Object({
    id: Type.String({ minLength: 1, maxLength: 100 }),
    status: Type.String(),
    agreement: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    accounts: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 100 }),
    reference: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    link: Type.Optional(Type.String()),
  });
export const Requisition = Compile(RequisitionSchema);
export type GcRequisition = Static<typeof RequisitionSchema>;

const AccountMetadataSchema = Type.Object({
    id: Type.String({ minLength: 1 }),
    status: Type.Optional(Type.String()),
    iban: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    bban: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    owner_name: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    name: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  });
export const AccountMetadata = Compile(AccountMetadataSchema);
export type GcAccountMetadata = Static<typeof AccountMetadataSchema>;

const Amount = Type.Object({ amount: Type.String(), currency: Type.String({ pattern: '^[A-Z]{3}$' }) });

const AccountDetailsSchema = Type.Object({
    account: Type.Object({
      resourceId: Type.Optional(Type.String()),
      iban: Type.Optional(Type.String()),
      bban: Type.Optional(Type.String()),
      scan: Type.Optional(Type.String()),
      currency: Type.Optional(Type.String()),
      ownerName: Type.Optional(Type.String()),
      name: Type.Optional(Type.String()),
      displayName: Type.Optional(Type.String()),
      product: Type.Optional(Type.String()),
      cashAccountType: Type.Optional(Type.String()),
      usage: Type.Optional(Type.String()),
    }),
  });
export const AccountDetails = Compile(AccountDetailsSchema);
export type GcAccountDetails = Static<typeof AccountDetailsSchema>['account'];

const Balance = Type.Object({
  balanceAmount: Amount,
  balanceType: Type.String(),
  lastChangeDateTime: Type.Optional(Type.String()),
  referenceDate: Type.Optional(Type.String()),
});
export type GcBalance = Static<typeof Balance>;
export const Balances = Compile(Type.Object({ balances: Type.Array(Balance, { maxItems: 100 }) }));

const Transaction = Type.Object({
  transactionAmount: Amount,
  transactionId: Type.Optional(Type.String()),
  internalTransactionId: Type.Optional(Type.String()),
  entryReference: Type.Optional(Type.String()),
  bookingDate: Type.Optional(Type.String()),
  bookingDateTime: Type.Optional(Type.String()),
  valueDate: Type.Optional(Type.String()),
  valueDateTime: Type.Optional(Type.String()),
  creditorName: Type.Optional(Type.String()),
  debtorName: Type.Optional(Type.String()),
  remittanceInformationUnstructured: Type.Optional(Type.String()),
  remittanceInformationUnstructuredArray: Type.Optional(Type.Array(Type.String())),
  additionalInformation: Type.Optional(Type.String()),
});
export type GcTransaction = Static<typeof Transaction>;
export const Transactions = Compile(
  Type.Object({
    transactions: Type.Object({
      booked: Type.Array(Transaction, { maxItems: 20_000 }),
      pending: Type.Optional(Type.Array(Transaction, { maxItems: 20_000 })),
    }),
  }),
);

/** Mooring's grant for a GoCardless connection: the requisition, its agreement and its accounts (no secrets: the token pair is shared, see tokens.ts). */
const GcGrantSchema = Type.Object({
    requisitionId: Type.String({ minLength: 1 }),
    agreementId: Type.String({ minLength: 1 }),
    accountIds: Type.Array(Type.String({ minLength: 1 })),
    /** When the user accepted the agreement, and for how many days it runs from then. */
    acceptedAt: Type.Union([Type.String(), Type.Null()]),
    accessValidForDays: Type.Integer({ minimum: 1 }),
  });
export const GcGrant = Compile(GcGrantSchema);
export type GcGrant = Static<typeof GcGrantSchema>;

const GcPendingSchema = Type.Object({
    requisitionId: Type.String({ minLength: 1 }),
    agreementId: Type.String({ minLength: 1 }),
    reference: Type.String({ minLength: 1 }),
    /** The requisition a reauth replaces (deleted at GoCardless once the new one is linked). */
    previousRequisitionId: Type.Optional(Type.String()),
  });
export const GcPending = Compile(GcPendingSchema);
export type GcPending = Static<typeof GcPendingSchema>;
