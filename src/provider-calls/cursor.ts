/** The keyset cursor of the call log's pages: the last row's (at, id), opaque to clients. Pure. */
import type { CallCursor } from './repository.ts';

export const encodeCursor = (c: CallCursor): string => Buffer.from(`${c.at.toISOString()}|${c.id}`, 'utf8').toString('base64url');

/** The cursor, or null when `raw` is not one this API gave. */
export function decodeCursor(raw: string): CallCursor | null {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\|(\d{1,19})$/.exec(Buffer.from(raw, 'base64url').toString('utf8'));
  if (m === null || m[1] === undefined || m[2] === undefined) return null;
  const at = new Date(m[1]);
  return Number.isNaN(at.getTime()) ? null : { at, id: m[2] };
}
