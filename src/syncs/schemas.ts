import { Type, type Static } from 'typebox';
import { DateTime, literals, NullableDateTime } from '../http/schemas.ts';
import { FETCH_STATUSES } from '../connections/status.ts';

export const SYNC_ACTIONS = ['auto-update', 'client-update'] as const;
export type SyncAction = (typeof SYNC_ACTIONS)[number];
export const SYNC_METHODS = ['ADD', 'UPDATE'] as const;
export type SyncMethod = (typeof SYNC_METHODS)[number];
export const SYNC_STATES = ['queued', 'running', 'done'] as const;
export type SyncState = (typeof SYNC_STATES)[number];

export const Sync = Type.Object(
  {
    id: Type.String(),
    connectionId: Type.String(),
    action: literals(SYNC_ACTIONS),
    method: literals(SYNC_METHODS),
    fetchStatus: Type.Union([literals(FETCH_STATUSES), Type.Null()], {
      description:
        "Moneyhub's success, error, partial, mfa-required and credentials-error; beyond Moneyhub, rate-limited: the provider " +
        'answered 429 (or its earlier 429 still held), so the sync neither failed nor retrieved data. It changes neither the ' +
        "connection's status nor lastUpdated, and errorDetail says when Mooring calls the provider again. Null until the sync is done.",
    }),
    createdAt: DateTime,
    fetchedAt: NullableDateTime,
    accounts: Type.Array(Type.Object({ providerId: Type.String(), accountId: Type.String() })),
    state: literals(SYNC_STATES),
    finishedAt: NullableDateTime,
    counts: Type.Object({ accounts: Type.Integer(), transactionsAdded: Type.Integer(), transactionsUpdated: Type.Integer() }),
    errorDetail: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: 'Sync' },
);
export type SyncJson = Static<typeof Sync>;
