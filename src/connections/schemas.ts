import { Type, type Static } from 'typebox';
import { DateTime, literals, NullableDateTime } from '../http/schemas.ts';
import { PROVIDER_TYPES } from '../providers/kinds.ts';
import { CONNECTION_ERRORS, CONNECTION_STATUSES, EXTENDED_STATUSES, REMEDIATION_ACTIONS } from './status.ts';

export const Remediation = Type.Object({
  action: literals(REMEDIATION_ACTIONS),
  reason: Type.String(),
  retryAfter: Type.Optional(DateTime),
});

export const Connection = Type.Object(
  {
    id: Type.String({ description: '<32 hex>:<uuid>, opaque' }),
    name: Type.String(),
    type: literals(PROVIDER_TYPES),
    connectedOn: DateTime,
    lastUpdated: NullableDateTime,
    expiresAt: NullableDateTime,
    accountIds: Type.Array(Type.String()),
    status: literals(CONNECTION_STATUSES),
    error: Type.Union([literals(CONNECTION_ERRORS), Type.Null()]),
    userConsentedAt: DateTime,
    tppConsent: Type.Boolean(),
    extendedStatus: Type.Union([literals(EXTENDED_STATUSES), Type.Null()]),
    lastAttemptAt: NullableDateTime,
    nextSyncAt: NullableDateTime,
    syncBudget: Type.Object({ remaining: Type.Integer(), resetsAt: NullableDateTime }),
    rateLimitedUntil: Type.Union([DateTime, Type.Null()], {
      description:
        'Beyond Moneyhub: the provider answered 429 and Mooring does not call it for this connection before this time ' +
        '(the reset the provider gave, else the next scheduled sync); null when not rate-limited. A rate-limited sync changes neither status nor error.',
    }),
    remediation: Remediation,
  },
  { $id: 'Connection' },
);
export type ConnectionJson = Static<typeof Connection>;

export const ConnectionParams = Type.Object({ userId: Type.String(), connectionId: Type.String() });

export const PatchConnectionBody = Type.Object(
  { expiresAt: Type.String({ description: 'New consent expiry: a date-time in the future, at most 90 days from now' }) },
  { additionalProperties: false },
);
