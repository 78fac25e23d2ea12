/** Webhook policy (SPEC section 9): the events Mooring sends, delivery retries and time-outs, signature tolerance and reminder timing. */

/** The events Mooring sends, written once. */
export const EVENT_TYPES = [
  'newTransactions',
  'syncCompleted',
  'reauthReminder',
  'refreshReminder',
  'connectionStatusChanged',
  'connectionRepaired',
  'connectionExpired',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Deliveries are retried with exponential back-off for this long after the event. */
export const DELIVERY_WINDOW_HOURS = 24;
export const FIRST_RETRY_SECONDS = 30;
export const MAX_RETRY_INTERVAL_SECONDS = 3600;
/** SPEC section 9: an attempt without an answer within 10 s has failed. */
export const DELIVERY_TIMEOUT_MS = 10_000;
/** Receivers reject signatures older than this. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;
export const REAUTH_REMINDER_DAYS_BEFORE = 5;
export const REMINDER_INTERVAL_HOURS = 48;
export const REFRESH_REMINDER_AFTER_DAYS = 2;

/** When to try a failed delivery again: 30 s, 1 min, 2 min, … capped at an hour. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(MAX_RETRY_INTERVAL_SECONDS, FIRST_RETRY_SECONDS * 2 ** Math.max(0, attempts - 1));
}
