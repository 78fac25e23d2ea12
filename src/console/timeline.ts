/**
 * A connection's timeline for the operator (pure: no I/O). Each source (journeys, syncs, status
 * changes, provider calls, webhook events) is read newest first by an index range for one
 * connection, at most a page and one more of each; the entries are merged here in one total order
 * (time descending, then kind, then id descending) and cut at the page. The cursor is the last
 * entry shown, so the next page starts right after it in that same order, whatever the sources.
 */

export const TIMELINE_KINDS = ['journey', 'sync', 'status_change', 'provider_call', 'webhook_event'] as const;
export type TimelineKind = (typeof TIMELINE_KINDS)[number];
export const isTimelineKind = (s: string): s is TimelineKind => (TIMELINE_KINDS as readonly string[]).includes(s);

export const TIMELINE_DEFAULT_LIMIT = 50;
export const TIMELINE_MAX_LIMIT = 200;

export interface TimelineEntry {
  at: Date;
  kind: TimelineKind;
  /** The source row's id (as text): the tie-break within one kind. */
  id: string;
  summary: string;
  detail: Record<string, unknown>;
}

export interface TimelineCursor {
  at: Date;
  kind: TimelineKind;
  id: string;
}

const rank = (k: TimelineKind): number => TIMELINE_KINDS.indexOf(k);

/** Negative when `a` comes first (newer; at a tie, the kind listed first; then the greater id). */
export function compareEntries(a: Pick<TimelineEntry, 'at' | 'kind' | 'id'>, b: Pick<TimelineEntry, 'at' | 'kind' | 'id'>): number {
  const t = b.at.getTime() - a.at.getTime();
  if (t !== 0) return t;
  const k = rank(a.kind) - rank(b.kind);
  if (k !== 0) return k;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * Which rows of `kind` come after the cursor: those strictly older, and at the cursor's very time
 * those of a later kind (`all`), none of an earlier kind (`none`), or those of the cursor's kind
 * with a smaller id (`smaller_id`). A repository reads `at <= before` by its index, then filters ties.
 */
export interface SourceBound {
  before: Date | null;
  tie: 'all' | 'none' | 'smaller_id';
  id: string;
}

export function boundFor(kind: TimelineKind, cursor: TimelineCursor | null): SourceBound {
  if (cursor === null) return { before: null, tie: 'all', id: '' };
  const r = rank(kind) - rank(cursor.kind);
  return { before: cursor.at, tie: r > 0 ? 'all' : r < 0 ? 'none' : 'smaller_id', id: cursor.id };
}

/** Merges each source's newest-first rows and cuts a page; `next` is set when more entries follow. */
export function mergeTimeline(sources: TimelineEntry[][], limit: number): { entries: TimelineEntry[]; next: TimelineCursor | null } {
  const all = sources.flat().sort(compareEntries);
  const entries = all.slice(0, limit);
  const last = entries[entries.length - 1];
  const next = all.length > limit && last !== undefined ? { at: last.at, kind: last.kind, id: last.id } : null;
  return { entries, next };
}

export function encodeCursor(c: TimelineCursor): string {
  return Buffer.from(JSON.stringify([c.at.toISOString(), c.kind, c.id]), 'utf8').toString('base64url');
}

/** The cursor a page link carries, or null when it is not one of ours. */
export function decodeCursor(raw: string): TimelineCursor | null {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(raw)) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (!Array.isArray(v) || v.length !== 3) return null;
    const [at, kind, id] = v as unknown[];
    if (typeof at !== 'string' || typeof kind !== 'string' || typeof id !== 'string' || !isTimelineKind(kind) || id.length > 200) return null;
    const t = Date.parse(at);
    return Number.isNaN(t) ? null : { at: new Date(t), kind, id };
  } catch {
    return null;
  }
}

/** The kinds a filter names (comma-separated), or null when it names one that does not exist. */
export function parseKinds(raw: string | undefined): TimelineKind[] | null {
  if (raw === undefined || raw.trim() === '') return [...TIMELINE_KINDS];
  const parts = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (!parts.every(isTimelineKind)) return null;
  return TIMELINE_KINDS.filter((k) => parts.includes(k));
}

/** A state as connections.notified_state encodes it (`status:error:extendedStatus`). */
export interface EncodedState {
  status: string;
  error: string | null;
  extendedStatus: string | null;
}

export function decodeState(s: string): EncodedState {
  const [status = '', error = '', ext = ''] = s.split(':');
  return { status, error: error === '' ? null : error, extendedStatus: ext === '' ? null : ext };
}

/** A state in words: `error (sync_error)`, `error (credentials_error, expired)`, `ok`. */
export function stateInWords(s: EncodedState): string {
  const extra = [s.error, s.extendedStatus].filter((x): x is string => x !== null);
  return extra.length === 0 ? s.status : `${s.status} (${extra.join(', ')})`;
}
