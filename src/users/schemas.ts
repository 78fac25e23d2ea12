import { Type, type Static } from 'typebox';
import { DateTime } from '../http/schemas.ts';

export const UserId = Type.String({ pattern: '^[0-9a-f]{24}$', description: 'User id (24 hex characters)' });

export const User = Type.Object(
  {
    userId: UserId,
    clientUserId: Type.Optional(Type.String()),
    clientId: Type.String(),
    createdAt: DateTime,
    updatedAt: DateTime,
    scopes: Type.String(),
    managedBy: Type.Literal('client'),
    lastAccessed: DateTime,
    userType: Type.Union([Type.Literal('test'), Type.Literal('live')]),
    connectionIds: Type.Array(Type.String()),
  },
  { $id: 'User' },
);
export type UserJson = Static<typeof User>;

export const CreateUserBody = Type.Object(
  { clientUserId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
  { additionalProperties: false },
);

export const UserParams = Type.Object({ userId: Type.String({ description: 'User id' }) });
