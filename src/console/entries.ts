/**
 * Each timeline source as entries: the rows of one connection after a cursor, with a one-line
 * summary in words and the facts an operator checks (outcome, error, status codes, attempts).
 */
import type {
  ConsoleRepository, DeliverySourceRow, JourneySourceRow, ProviderCallSourceRow, StatusChangeSourceRow, SyncSourceRow, WebhookEventSourceRow,
} from './repository.ts';
import { decodeState, stateInWords, type SourceBound, type TimelineEntry, type TimelineKind } from './timeline.ts';

const iso = (d: Date | null): string | null => (d === null ? null : new Date(d).toISOString());

/** A journey's outcome from its step: finished, failed, or not (yet) finished. */
export function journeyOutcome(step: string): 'completed' | 'failed' | 'unfinished' {
  return step === 'done' ? 'completed' : step === 'failed' ? 'failed' : 'unfinished';
}

export function journeyEntry(r: JourneySourceRow): TimelineEntry {
  const outcome = journeyOutcome(r.step);
  return {
    at: r.at, kind: 'journey', id: r.id,
    summary: `${r.kind[0]?.toUpperCase() ?? ''}${r.kind.slice(1)} journey ${outcome}`,
    detail: { journeyId: r.id, journeyKind: r.kind, outcome, step: r.step, updatedAt: iso(r.updated_at) },
  };
}

export function syncEntry(r: SyncSourceRow): TimelineEntry {
  const how = `${r.action}${r.attended ? ', attended' : ''}`;
  const outcome = r.state !== 'done' ? r.state : (r.fetch_status ?? 'unknown');
  const error = r.state === 'done' && r.fetch_status !== 'success' && r.error_detail !== null ? `: ${r.error_detail}` : '';
  const counts = r.state === 'done' && (r.fetch_status === 'success' || r.fetch_status === 'partial') ? ` (${r.counts.accounts} accounts, ${r.counts.transactionsAdded} new transactions)` : '';
  return {
    at: r.at, kind: 'sync', id: r.id,
    summary: `Sync (${how}) ${outcome}${counts}${error}`,
    detail: {
      syncId: r.id, action: r.action, method: r.method, state: r.state, attended: r.attended, fetchStatus: r.fetch_status,
      finishedAt: iso(r.finished_at), counts: r.counts, errorDetail: r.error_detail, mooringFailure: r.internal_failure,
    },
  };
}

export function statusChangeEntry(r: StatusChangeSourceRow): TimelineEntry {
  const to = decodeState(r.to_state);
  const from = r.from_state === null ? null : decodeState(r.from_state);
  return {
    at: r.at, kind: 'status_change', id: r.id,
    summary: from === null ? `Status ${stateInWords(to)} (first state)` : `Status ${stateInWords(from)} → ${stateInWords(to)}`,
    detail: { from, to, remediationAction: r.remediation_action },
  };
}

export function providerCallEntry(r: ProviderCallSourceRow): TimelineEntry {
  const answer = r.status === null ? 'no answer' : String(r.status);
  const error = r.error_kind === null ? '' : ` (${r.error_kind})`;
  return {
    at: r.at, kind: 'provider_call', id: r.id,
    summary: `${r.method} ${r.endpoint} → ${answer}${error} in ${r.latency_ms} ms`,
    detail: {
      providerId: r.provider_id, method: r.method, endpoint: r.endpoint, status: r.status, latencyMs: r.latency_ms, errorKind: r.error_kind,
      syncId: r.sync_id, journeyId: r.journey_id, interactionId: r.interaction_id,
    },
  };
}

export function webhookEventEntry(r: WebhookEventSourceRow, deliveries: DeliverySourceRow[]): TimelineEntry {
  const state = r.delivered_at !== null ? 'delivered' : r.gave_up_at !== null ? 'abandoned' : r.next_attempt_at !== null ? 'awaiting delivery' : 'not delivered';
  return {
    at: r.at, kind: 'webhook_event', id: r.id,
    summary: `Webhook ${r.event_type}: ${state} (${deliveries.length} ${deliveries.length === 1 ? 'attempt' : 'attempts'})`,
    detail: {
      eventId: r.id, eventType: r.event_type, payload: r.payload, deliveredAt: iso(r.delivered_at), nextAttemptAt: iso(r.next_attempt_at), gaveUpAt: iso(r.gave_up_at),
      deliveries: deliveries.map((d) => ({ at: iso(d.at), status: d.status, responseCode: d.response_code, error: d.error })),
    },
  };
}

export type TimelineSource = (connectionId: string, bound: SourceBound, limit: number) => Promise<TimelineEntry[]>;

/** Each kind's source over the console repository. */
export function timelineSources(repo: ConsoleRepository): Record<TimelineKind, TimelineSource> {
  return {
    journey: async (id, b, n) => (await repo.journeysOf(id, b, n)).map(journeyEntry),
    sync: async (id, b, n) => (await repo.syncsOf(id, b, n)).map(syncEntry),
    status_change: async (id, b, n) => (await repo.statusChangesOf(id, b, n)).map(statusChangeEntry),
    provider_call: async (id, b, n) => (await repo.providerCallsOf(id, b, n)).map(providerCallEntry),
    webhook_event: async (id, b, n) => {
      const events = await repo.webhookEventsOf(id, b, n);
      const deliveries = await repo.deliveriesOf(events.map((e) => e.id));
      return events.map((e) => webhookEventEntry(e, deliveries.filter((d) => d.event_id === e.id)));
    },
  };
}
