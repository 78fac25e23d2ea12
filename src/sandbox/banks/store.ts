/**
 * The sandbox banks' persistent state (migrations/0002_sandbox_banks.sql): consents, tokens,
 * legacy credentials and valuation assets. Token lifetimes use real time; everything else the
 * caller passes in from the domain clock.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Queryable } from '../../db/db.ts';
import { badRequest } from '../../errors.ts';
import { isSandboxUsername, SANDBOX_USERNAMES } from './behaviours.ts';
import { setSessionBehaviour } from './enablebanking-store.ts';

// ---- Tokens -------------------------------------------------------------------------------

export type TokenKind = 'client' | 'code' | 'access' | 'refresh' | 'credential' | 'otp_challenge';

const hashToken = (raw: string): string => createHash('sha256').update(raw).digest('hex');

export interface TokenRow {
  subjectId: string | null;
  redirectUri: string | null;
}

export async function issueToken(
  db: Queryable,
  t: { kind: TokenKind; providerId: string; subjectId: string | null; ttlMs: number; redirectUri?: string },
): Promise<string> {
  const raw = randomBytes(32).toString('base64url');
  await db.query(
    `insert into sandbox_tokens (token_hash, kind, provider_id, subject_id, redirect_uri, expires_at)
     values ($1, $2, $3, $4, $5, $6)`,
    [hashToken(raw), t.kind, t.providerId, t.subjectId, t.redirectUri ?? null, new Date(Date.now() + t.ttlMs)],
  );
  return raw;
}

/** The live (unexpired, unconsumed) token of this kind, or null. */
export async function findToken(db: Queryable, raw: string, kind: TokenKind, providerId: string): Promise<TokenRow | null> {
  const r = await db.query<{ subject_id: string | null; redirect_uri: string | null }>(
    `select subject_id, redirect_uri from sandbox_tokens
     where token_hash = $1 and kind = $2 and provider_id = $3 and consumed_at is null and expires_at > $4`,
    [hashToken(raw), kind, providerId, new Date()],
  );
  const row = r.rows[0];
  return row === undefined ? null : { subjectId: row.subject_id, redirectUri: row.redirect_uri };
}

/** Uses a single-use token (an authorisation code, a one-time-code challenge); null if not live. */
export async function consumeToken(db: Queryable, raw: string, kind: TokenKind, providerId: string): Promise<TokenRow | null> {
  const now = new Date();
  const r = await db.query<{ subject_id: string | null; redirect_uri: string | null }>(
    `update sandbox_tokens set consumed_at = $4
     where token_hash = $1 and kind = $2 and provider_id = $3 and consumed_at is null and expires_at > $4
     returning subject_id, redirect_uri`,
    [hashToken(raw), kind, providerId, now],
  );
  const row = r.rows[0];
  return row === undefined ? null : { subjectId: row.subject_id, redirectUri: row.redirect_uri };
}

export async function revokeTokensOf(db: Queryable, subjectId: string): Promise<void> {
  await db.query('update sandbox_tokens set consumed_at = $2 where subject_id = $1 and consumed_at is null', [subjectId, new Date()]);
}

// ---- Open Banking consents ----------------------------------------------------------------

export type ConsentStatus = 'AwaitingAuthorisation' | 'Authorised' | 'Rejected' | 'Revoked' | 'Expired';

export interface ConsentRow {
  id: string;
  providerId: string;
  permissions: string[];
  status: ConsentStatus;
  expiresAt: Date | null;
  username: string | null;
  behaviour: string | null;
  createdAt: Date;
  statusUpdatedAt: Date;
  authorisedAt: Date | null;
  fetchCount: number;
}

interface ConsentDbRow {
  id: string;
  provider_id: string;
  permissions: string[];
  status: ConsentStatus;
  expires_at: Date | null;
  username: string | null;
  behaviour: string | null;
  created_at: Date;
  status_updated_at: Date;
  authorised_at: Date | null;
  fetch_count: number;
}

const toConsent = (r: ConsentDbRow): ConsentRow => ({
  id: r.id,
  providerId: r.provider_id,
  permissions: r.permissions,
  status: r.status,
  expiresAt: r.expires_at,
  username: r.username,
  behaviour: r.behaviour,
  createdAt: r.created_at,
  statusUpdatedAt: r.status_updated_at,
  authorisedAt: r.authorised_at,
  fetchCount: r.fetch_count,
});

export async function insertConsent(
  db: Queryable,
  c: { providerId: string; permissions: string[]; expiresAt: Date | null; now: Date },
): Promise<ConsentRow> {
  const r = await db.query<ConsentDbRow>(
    `insert into sandbox_consents (id, provider_id, permissions, status, expires_at, created_at, status_updated_at)
     values ($1, $2, $3, 'AwaitingAuthorisation', $4, $5, $5) returning *`,
    [`aac-${randomUUID()}`, c.providerId, JSON.stringify(c.permissions), c.expiresAt, c.now],
  );
  return toConsent(r.rows[0] as ConsentDbRow);
}

export async function getConsent(db: Queryable, id: string, providerId: string): Promise<ConsentRow | null> {
  const r = await db.query<ConsentDbRow>('select * from sandbox_consents where id = $1 and provider_id = $2', [id, providerId]);
  return r.rows[0] === undefined ? null : toConsent(r.rows[0]);
}

/** The customer approved on the login page: the username picks the behaviour; the sync count starts again. */
export async function authoriseConsent(db: Queryable, id: string, username: string, behaviour: string, now: Date): Promise<boolean> {
  const r = await db.query(
    `update sandbox_consents set status = 'Authorised', username = $2, behaviour = $3, authorised_at = $4,
       status_updated_at = $4, fetch_count = 0
     where id = $1 and status = 'AwaitingAuthorisation'`,
    [id, username, behaviour, now],
  );
  return r.rowCount > 0;
}

export async function setConsentStatus(db: Queryable, id: string, status: 'Rejected' | 'Revoked' | 'Expired', now: Date): Promise<void> {
  await db.query('update sandbox_consents set status = $2, status_updated_at = $3 where id = $1', [id, status, now]);
}

type CountedTable = 'sandbox_consents' | 'sandbox_credentials' | 'sandbox_valuation_assets';

/** Counts one more sync against a consent, credential or asset and answers its number (1 for the first). */
export async function countSync(db: Queryable, table: CountedTable, id: string): Promise<number> {
  const r = await db.query<{ fetch_count: number }>(`update ${table} set fetch_count = fetch_count + 1 where id = $1 returning fetch_count`, [id]);
  return r.rows[0]?.fetch_count ?? 1;
}

// ---- Legacy credentials ---------------------------------------------------------------------

export interface CredentialRow {
  id: string;
  providerId: string;
  username: string;
  behaviour: string;
  status: 'awaiting_otp' | 'active' | 'revoked';
  authorisedAt: Date | null;
  otpAttempts: number;
  fetchCount: number;
}

export async function insertCredential(
  db: Queryable,
  c: { providerId: string; username: string; behaviour: string; status: 'awaiting_otp' | 'active'; now: Date },
): Promise<string> {
  const id = `cred-${randomUUID()}`;
  await db.query(
    `insert into sandbox_credentials (id, provider_id, username, behaviour, status, created_at, authorised_at)
     values ($1, $2, $3, $4, $5, $6, $7)`,
    [id, c.providerId, c.username, c.behaviour, c.status, c.now, c.status === 'active' ? c.now : null],
  );
  return id;
}

export async function getCredential(db: Queryable, id: string, providerId: string): Promise<CredentialRow | null> {
  const r = await db.query<{
    id: string; provider_id: string; username: string; behaviour: string; status: CredentialRow['status'];
    authorised_at: Date | null; otp_attempts: number; fetch_count: number;
  }>('select * from sandbox_credentials where id = $1 and provider_id = $2', [id, providerId]);
  const row = r.rows[0];
  if (row === undefined) return null;
  return {
    id: row.id, providerId: row.provider_id, username: row.username, behaviour: row.behaviour, status: row.status,
    authorisedAt: row.authorised_at, otpAttempts: row.otp_attempts, fetchCount: row.fetch_count,
  };
}

export async function updateCredential(
  db: Queryable,
  id: string,
  change: { status?: CredentialRow['status']; authorisedAt?: Date; otpFailed?: boolean },
): Promise<void> {
  await db.query(
    `update sandbox_credentials set status = coalesce($2, status), authorised_at = coalesce($3, authorised_at),
       otp_attempts = otp_attempts + $4 where id = $1`,
    [id, change.status ?? null, change.authorisedAt ?? null, change.otpFailed === true ? 1 : 0],
  );
}

// ---- Valuation assets -----------------------------------------------------------------------

export interface AssetRow {
  id: string;
  providerId: string;
  assetKind: 'property' | 'vehicle';
  postcode: string | null;
  houseNumber: string | null;
  registration: string | null;
  behaviour: string;
  status: 'active' | 'removed';
  createdAt: Date;
}

export async function insertAsset(db: Queryable, a: Omit<AssetRow, 'id' | 'status'>): Promise<string> {
  const id = `asset-${randomUUID()}`;
  await db.query(
    `insert into sandbox_valuation_assets (id, provider_id, asset_kind, postcode, house_number, registration, behaviour, status, created_at)
     values ($1, $2, $3, $4, $5, $6, $7, 'active', $8)`,
    [id, a.providerId, a.assetKind, a.postcode, a.houseNumber, a.registration, a.behaviour, a.createdAt],
  );
  return id;
}

export async function getAsset(db: Queryable, id: string, providerId: string): Promise<AssetRow | null> {
  const r = await db.query<{
    id: string; provider_id: string; asset_kind: AssetRow['assetKind']; postcode: string | null; house_number: string | null;
    registration: string | null; behaviour: string; status: AssetRow['status']; created_at: Date;
  }>('select * from sandbox_valuation_assets where id = $1 and provider_id = $2', [id, providerId]);
  const row = r.rows[0];
  if (row === undefined) return null;
  return {
    id: row.id, providerId: row.provider_id, assetKind: row.asset_kind, postcode: row.postcode, houseNumber: row.house_number,
    registration: row.registration, behaviour: row.behaviour, status: row.status, createdAt: row.created_at,
  };
}

export async function removeAsset(db: Queryable, id: string): Promise<void> {
  await db.query(`update sandbox_valuation_assets set status = 'removed' where id = $1`, [id]);
}

// ---- Switching behaviour (the sandbox control API) ------------------------------------------

/**
 * Switches the behaviour of the consent, credential or asset whose id is `providerRef` (the `ref`
 * an adapter returned when the journey finished). The sync count is kept, so switching to
 * `user_revoked` after the first sync refuses the next one. Answers false when no such grant exists;
 * an unknown username is a 400.
 */
export async function setSandboxBehaviour(db: Queryable, providerRef: string, username: string): Promise<boolean> {
  if (!isSandboxUsername(username)) {
    throw badRequest('invalid_username', `username must be one of ${SANDBOX_USERNAMES.join(', ')}`, { field: 'username' });
  }
  // A consent that user_revoked left Revoked is the customer's again under another behaviour (the
  // sandbox control stands for the customer; a consent deleted by Mooring stays Revoked).
  const consent = await db.query(
    `update sandbox_consents set status = case when status = 'Revoked' and behaviour = 'user_revoked' and $2 <> 'user_revoked' then 'Authorised' else status end,
       behaviour = $2 where id = $1`,
    [providerRef, username],
  );
  if (consent.rowCount > 0) return true;
  if (await setSessionBehaviour(db, providerRef, username)) return true;
  for (const table of ['sandbox_credentials', 'sandbox_valuation_assets', 'sandbox_gc_requisitions'] as const) {
    const r = await db.query(`update ${table} set behaviour = $2 where id = $1`, [providerRef, username]);
    if (r.rowCount > 0) return true;
  }
  return false;
}
