/**
 * The domain clock. Domain code asks it for "now" instead of reading the system time, so the sandbox
 * can move time forward (consent expiry, staleness, schedules) and tests never sleep.
 * Token lifetimes and other security timers keep real time and do not use it.
 */
export interface Clock {
  now(): Date;
  /** Milliseconds the domain clock runs ahead of real time. */
  offsetMs(): number;
}

export interface MovableClock extends Clock {
  setOffsetMs(offsetMs: number): void;
}

export function systemClock(realNow: () => number = () => Date.now()): MovableClock {
  let offset = 0;
  return {
    now: () => new Date(realNow() + offset),
    offsetMs: () => offset,
    setOffsetMs: (ms: number) => {
      offset = ms;
    },
  };
}
