/** The startDate/endDate rules of GET /v2.0/transactions, as pure functions. */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { parseDateBound, parseDateRange } from '../../src/accounts/date-range.ts';

function failure(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('transaction date bounds', () => {
  it('reads a day as its first millisecond when it starts a range and its last when it ends one', () => {
    expect(parseDateBound('startDate', '2024-02-29', 'start').toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(parseDateBound('endDate', '2024-02-29', 'end').toISOString()).toBe('2024-02-29T23:59:59.999Z');
  });

  it('reads a date-time as that instant, honouring its offset and treating no offset as UTC', () => {
    expect(parseDateBound('startDate', '2024-03-01T10:15:30Z', 'start').toISOString()).toBe('2024-03-01T10:15:30.000Z');
    expect(parseDateBound('startDate', '2024-03-01T10:15:30.1234+01:30', 'start').toISOString()).toBe('2024-03-01T08:45:30.123Z');
    expect(parseDateBound('endDate', '2024-03-01T00:30-02:00', 'end').toISOString()).toBe('2024-03-01T02:30:00.000Z');
    expect(parseDateBound('endDate', '2024-03-01T10:15', 'end').toISOString()).toBe('2024-03-01T10:15:00.000Z');
  });

  it.each(['', 'today', '2024-3-1', '2023-02-29', '2024-04-31', '2024-00-10', '2024-01-01T24:00:00Z', '2024-01-01T10:60Z', '2024-01-01T10:00:00+24:00', '2024-01-01 10:00:00Z', '1709251200'])(
    'rejects %j with a 400 that names the field',
    (value) => {
      const err = failure(() => parseDateBound('endDate', value, 'end'));
      expect(err.statusCode).toBe(400);
      expect(err.code).toBe('invalid_request');
      expect(err.message).toContain('endDate');
      expect(err.details).toEqual([{ field: 'endDate', problem: expect.any(String) }]);
    },
  );

  it('accepts open ranges and a one-day range, and rejects a start after the end', () => {
    expect(parseDateRange({})).toEqual({ from: null, to: null });
    const oneDay = parseDateRange({ startDate: '2024-03-01', endDate: '2024-03-01' });
    expect(oneDay.to!.getTime() - oneDay.from!.getTime()).toBe(86_400_000 - 1);
    const err = failure(() => parseDateRange({ startDate: '2024-03-02', endDate: '2024-03-01T23:00:00Z' }));
    expect(err.statusCode).toBe(400);
    expect(err.message).toContain('startDate');
  });
});
