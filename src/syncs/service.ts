/** Sync history and client-requested syncs. */
import type { Clock } from '../clock.ts';
import { AppError, notFound } from '../errors.ts';
import { isUuid } from '../ids.ts';
import type { Page } from '../http/schemas.ts';
import type { SyncsRepository } from './repository.ts';
import { toSyncJson } from './runner.ts';
import type { SyncEngine } from './engine.ts';
import type { SyncJson } from './schemas.ts';

export function syncsService(deps: { syncs: SyncsRepository; engine: SyncEngine; clock: Clock }) {
  return {
    async listForConnection(connectionId: string, page: Page): Promise<{ syncs: SyncJson[]; total: number }> {
      const { rows, total } = await deps.syncs.listForConnection(connectionId, page.limit, page.offset);
      return { syncs: rows.map(toSyncJson), total };
    },

    async get(userId: string, syncId: string): Promise<SyncJson> {
      const row = isUuid(syncId) ? await deps.syncs.findForUser(userId, syncId) : undefined;
      if (row === undefined) throw notFound('Sync');
      return toSyncJson(row);
    },

    /**
     * A sync the client asked for; answers Moneyhub's `{ status }` once it has run (or could not).
     * While the provider's 429 holds, nothing is sent to it: a 429 `provider_rate_limited` says until when.
     */
    async requestSync(connectionId: string, customerIpAddress: string | undefined): Promise<{ status: 'ok' | 'error'; syncId: string | null }> {
      const outcome = await deps.engine.sync(
        { connectionId, action: 'client-update', attended: customerIpAddress !== undefined, ...(customerIpAddress !== undefined ? { customerIpAddress } : {}) },
        { wait: true, enforceBudget: true },
      );
      if (outcome.kind === 'skipped' && outcome.reason === 'rate_limited') {
        const until = outcome.until.toISOString();
        const seconds = Math.max(1, Math.ceil((outcome.until.getTime() - deps.clock.now().getTime()) / 1000));
        throw new AppError(429, 'provider_rate_limited', `${outcome.providerName} limited how often Mooring may ask for this connection's data; Mooring does not call it before ${until} and syncs automatically then.`, {
          details: { retryAfter: until },
          headers: { 'retry-after': String(seconds) },
        });
      }
      if (outcome.kind !== 'done') return { status: 'error', syncId: null };
      return { status: outcome.sync.fetch_status === 'success' ? 'ok' : 'error', syncId: outcome.sync.id };
    },
  };
}
export type SyncsService = ReturnType<typeof syncsService>;
