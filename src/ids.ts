/**
 * The shapes of Mooring's ids. An id that cannot be one of ours is answered "not found" without
 * touching the database (and text PostgreSQL cannot store, such as NUL, never reaches it).
 */
export const USER_ID_PATTERN = /^[0-9a-f]{24}$/;
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** `<32 hex provider id>:<uuid>` */
export const CONNECTION_ID_PATTERN = /^[0-9a-f]{32}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUserId = (s: string): boolean => USER_ID_PATTERN.test(s);
export const isUuid = (s: string): boolean => UUID_PATTERN.test(s);
export const isConnectionId = (s: string): boolean => CONNECTION_ID_PATTERN.test(s);
