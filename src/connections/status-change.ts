/**
 * Detecting a connection's status change and recording its events (SPEC section 9), exactly once
 * per real change: the current state is compared with the state the client was last told
 * (`connections.notified_state`) under the connection's row lock, inside the caller's transaction.
 * The webhook dispatcher only delivers what is recorded here.
 */
import type { Clock } from '../clock.ts';
import type { Queryable } from '../db/db.ts';
import type { Catalog } from '../providers/catalog.ts';
import { LONGEST_WINDOW_MS } from '../syncs/cadence.ts';
import { webhooksRepository } from '../webhooks/repository.ts';
import { connectionsRepository } from './repository.ts';
import { toConnectionJson } from './service.ts';
import { nextTimeDrivenChange } from './status.ts';

interface StateParts {
  status: string;
  error: string | null;
  extendedStatus: string | null;
}
const encode = (s: StateParts): string => `${s.status}:${s.error ?? ''}:${s.extendedStatus ?? ''}`;
const decode = (s: string): StateParts => {
  const [status = '', error = '', ext = ''] = s.split(':');
  return { status, error: error === '' ? null : error, extendedStatus: ext === '' ? null : ext };
};

/** Records a status change of one connection, if it has one; call it in the transaction that changed the connection. */
export type RecordStatusChange = (tx: Queryable, connectionId: string) => Promise<void>;

export function statusChangeRecorder(deps: { catalog: Catalog; clock: Clock }): RecordStatusChange {
  /**
   * Compares the connection's state with what its client was last told; on a change, records
   * connectionStatusChanged (and connectionExpired / connectionRepaired where they apply). Either
   * way it remembers the state told and when time alone may next change it, for the event sweep.
   */
  return async function recordStatusChange(tx: Queryable, connectionId: string): Promise<void> {
    const txConnections = connectionsRepository(tx);
    const h = await txConnections.lockNotifiedState(connectionId);
    if (h === undefined) return;
    const now = deps.clock.now();
    const view = await txConnections.findForUser(h.user_id, connectionId, new Date(now.getTime() - LONGEST_WINDOW_MS));
    if (view === undefined) return;
    const provider = deps.catalog.get(view.provider_id);
    const json = toConnectionJson(view, provider, now);
    const current = { status: json.status, error: json.error, extendedStatus: json.extendedStatus };
    const encoded = encode(current);
    // The next moment time alone could change the status: consent expiry or data going stale.
    const checkAt = nextTimeDrivenChange(provider ?? null, view.expires_at, view.last_updated, view.connected_on, now);
    await txConnections.setNotifiedState(connectionId, encoded, checkAt);
    if (h.notified_state === encoded) return;
    // The operator's history of this connection (the console's timeline), the first state included.
    await txConnections.insertStatusChange({ connectionId, at: now, from: h.notified_state, to: encoded, remediationAction: json.remediation.action });
    if (h.notified_state === null) return;

    const previous = decode(h.notified_state);
    const events = webhooksRepository(tx);
    const base = { clientId: h.client_id, userId: h.user_id, now };
    const common = { connectionId, bankName: json.name };
    await events.insertEvent({ ...base, type: 'connectionStatusChanged', payload: { ...common, previous, current, remediation: json.remediation } });
    if (current.extendedStatus === 'expired' && previous.extendedStatus !== 'expired') {
      await events.insertEvent({ ...base, type: 'connectionExpired', payload: { ...common, expiredAt: json.expiresAt, tppConsent: json.tppConsent, remediation: json.remediation } });
    }
    if (current.status === 'ok' && previous.status === 'error') {
      await events.insertEvent({ ...base, type: 'connectionRepaired', payload: { ...common, previousError: previous.error } });
    }
  };
}
