/**
 * SQL for the columns that hold sealed values, page by page, so `keys rotate` (and start-up, for
 * values stored before sealing) can re-seal them under the current key without stopping anything.
 * Each page skips the values already sealed under `keepPattern` (a LIKE pattern); each replace
 * writes only if the value is still the one read.
 */
import type { Queryable } from '../db/db.ts';
import { grantContext } from '../connections/repository.ts';
import { clientSecretContext, sessionIdContext } from '../oauth/adapter.ts';
import { webhookSecretContext } from '../webhooks/repository.ts';
import { tokenContext as goCardlessTokenContext } from '../providers/gocardless/tokens.ts';
import { SEALED_SETTINGS, settingContext } from '../db/settings.ts';

export interface SealedValue {
  /** The row's key (for messages and keyset paging). */
  key: string;
  /** The sealed value, or the plain text of a value stored before sealing. */
  value: string;
  /** What the replace compares to decide that nobody changed the value since it was read. */
  guard: string;
  context: string;
}

export interface ResealedValue {
  row: SealedValue;
  sealed: string;
}

/** The three parallel arrays a batched replace unnests: keys, new sealed values, guards. */
const arrays = (items: readonly ResealedValue[]): [string[], string[], string[]] => [
  items.map((i) => i.row.key),
  items.map((i) => i.sealed),
  items.map((i) => i.row.guard),
];
const keysOf = (rows: { key: string }[]): Set<string> => new Set(rows.map((r) => r.key));

export interface SealedColumn {
  name: string;
  /** Values after `afterKey` not matching `keepPattern`, in key order. */
  page(afterKey: string, keepPattern: string, limit: number): Promise<SealedValue[]>;
  /**
   * Writes each re-sealed value whose stored one is still its `row.guard`, in one statement; returns
   * the keys written (a key missing from the answer changed meanwhile).
   */
  replace(items: readonly ResealedValue[]): Promise<Set<string>>;
}

export function sealedColumns(db: Queryable): SealedColumn[] {
  return [
    {
      name: 'settings (keys and credentials)',
      async page(afterKey, keepPattern, limit) {
        // Sealed: a JSON string holding the sealed JSON text. Before sealing: any JSON value.
        const r = await db.query<{ key: string; value: string; guard: string }>(
          `select key, case when jsonb_typeof(value) = 'string' and value #>> '{}' like 'v1.%' then value #>> '{}' else value::text end as value,
                  value::text as guard
             from settings
            where key = any($4::text[]) and key > $1 and not (jsonb_typeof(value) = 'string' and value #>> '{}' like $2)
            order by key limit $3`,
          [afterKey, keepPattern, limit, [...SEALED_SETTINGS]],
        );
        return r.rows.map((row) => ({ ...row, context: settingContext(row.key) }));
      },
      async replace(items) {
        const r = await db.query<{ key: string }>(
          `update settings s set value = to_jsonb(v.sealed), updated_at = now()
             from unnest($1::text[], $2::text[], $3::text[]) as v(key, sealed, guard)
            where s.key = v.key and s.value = v.guard::jsonb
           returning s.key`,
          arrays(items),
        );
        return keysOf(r.rows);
      },
    },
    {
      name: 'connections.provider_grant',
      async page(afterKey, keepPattern, limit) {
        // A grant is stored as a JSON string when sealed; a JSON object is a grant from before sealing.
        const r = await db.query<{ key: string; value: string; guard: string }>(
          `select id as key, case when jsonb_typeof(provider_grant) = 'string' then provider_grant #>> '{}' else provider_grant::text end as value,
                  provider_grant::text as guard
             from connections
            where id > $1 and not (jsonb_typeof(provider_grant) = 'string' and provider_grant #>> '{}' like $2)
            order by id limit $3`,
          [afterKey, keepPattern, limit],
        );
        return r.rows.map((row) => ({ ...row, context: grantContext(row.key) }));
      },
      async replace(items) {
        const r = await db.query<{ key: string }>(
          `update connections c set provider_grant = to_jsonb(v.sealed)
             from unnest($1::text[], $2::text[], $3::text[]) as v(key, sealed, guard)
            where c.id = v.key and c.provider_grant = v.guard::jsonb
           returning c.id as key`,
          arrays(items),
        );
        return keysOf(r.rows);
      },
    },
    {
      name: 'gocardless_tokens.sealed',
      async page(afterKey, keepPattern, limit) {
        const r = await db.query<{ key: string; value: string }>(
          'select provider_id as key, sealed as value from gocardless_tokens where sealed is not null and provider_id > $1 and sealed not like $2 order by provider_id limit $3',
          [afterKey, keepPattern, limit],
        );
        return r.rows.map((row) => ({ ...row, guard: row.value, context: goCardlessTokenContext(row.key) }));
      },
      async replace(items) {
        const r = await db.query<{ key: string }>(
          `update gocardless_tokens t set sealed = v.sealed
             from unnest($1::text[], $2::text[], $3::text[]) as v(key, sealed, guard)
            where t.provider_id = v.key and t.sealed = v.guard
           returning t.provider_id as key`,
          arrays(items),
        );
        return keysOf(r.rows);
      },
    },
    {
      name: 'webhook_endpoints.secret',
      async page(afterKey, keepPattern, limit) {
        const r = await db.query<{ key: string; value: string }>(
          'select client_id as key, secret as value from webhook_endpoints where client_id > $1 and secret not like $2 order by client_id limit $3',
          [afterKey, keepPattern, limit],
        );
        return r.rows.map((row) => ({ ...row, guard: row.value, context: webhookSecretContext(row.key) }));
      },
      async replace(items) {
        const r = await db.query<{ key: string }>(
          `update webhook_endpoints w set secret = v.sealed
             from unnest($1::text[], $2::text[], $3::text[]) as v(key, sealed, guard)
            where w.client_id = v.key and w.secret = v.guard
           returning w.client_id as key`,
          arrays(items),
        );
        return keysOf(r.rows);
      },
    },
    {
      name: 'oidc_models Client client_secret',
      async page(afterKey, keepPattern, limit) {
        const r = await db.query<{ key: string; value: string }>(
          `select id as key, payload->>'client_secret' as value from oidc_models
            where kind = 'Client' and id > $1 and payload->>'client_secret' not like $2 order by id limit $3`,
          [afterKey, keepPattern, limit],
        );
        return r.rows.map((row) => ({ ...row, guard: row.value, context: clientSecretContext(row.key) }));
      },
      async replace(items) {
        const r = await db.query<{ key: string }>(
          `update oidc_models m set payload = jsonb_set(m.payload, '{client_secret}', to_jsonb(v.sealed))
             from unnest($1::text[], $2::text[], $3::text[]) as v(key, sealed, guard)
            where m.kind = 'Client' and m.id = v.key and m.payload->>'client_secret' = v.guard
           returning m.id as key`,
          arrays(items),
        );
        return keysOf(r.rows);
      },
    },
    {
      // Mooring's own sessions (kind Session) and the sandbox Open Banking banks' (`sandbox-ob/<slug>:Session`),
      // keyed by kind and id (the primary key, so pages follow its index).
      name: 'oidc_models Session id',
      async page(afterKey, keepPattern, limit) {
        const [afterKind, afterId] = afterKey === '' ? ['', ''] : (JSON.parse(afterKey) as [string, string]);
        // The session kinds present, found by a skip scan of the primary key (one index probe per distinct
        // kind, in the database's own collation, so no range bound depends on how it sorts punctuation);
        // then each kind's rows in key order from the cursor — never the other kinds' rows (AccessToken, Grant…).
        const kinds = await db.query<{ kind: string }>(
          `with recursive k(kind) as (
             (select kind from oidc_models order by kind limit 1)
             union all
             select (select o.kind from oidc_models o where o.kind > k.kind order by o.kind limit 1) from k where k.kind is not null
           )
           select kind from k where kind is not null and (kind = 'Session' or kind like '%:Session') and kind >= $1 order by kind`,
          [afterKind],
        );
        const rows: { key: string; value: string; uid: string }[] = [];
        for (const { kind } of kinds.rows) {
          if (rows.length >= limit) break;
          const r = await db.query<{ id: string; value: string; uid: string }>(
            `select id, payload->>'jti' as value, payload->>'uid' as uid from oidc_models
              where kind = $1 and id > $2 and payload->>'jti' not like $3 and payload->>'uid' is not null
              order by id limit $4`,
            [kind, kind === afterKind ? afterId : '', keepPattern, limit - rows.length],
          );
          for (const row of r.rows) rows.push({ key: JSON.stringify([kind, row.id]), value: row.value, uid: row.uid });
        }
        return rows.map((row) => ({ key: row.key, value: row.value, guard: row.value, context: sessionIdContext(row.uid) }));
      },
      async replace(items) {
        const r = await db.query<{ key: string }>(
          `update oidc_models m set payload = jsonb_set(m.payload, '{jti}', to_jsonb(v.sealed))
             from unnest($1::text[], $2::text[], $3::text[]) as v(key, sealed, guard)
            where m.kind = v.key::jsonb->>0 and m.id = v.key::jsonb->>1 and m.payload->>'jti' = v.guard
              and (m.kind = 'Session' or m.kind like '%:Session')
           returning jsonb_build_array(m.kind, m.id)::text as key`,
          arrays(items),
        );
        return keysOf(r.rows);
      },
    },
  ];
}
