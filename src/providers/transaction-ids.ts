/**
 * Stable ids for a provider's transactions (SPEC section 5: a transaction keeps its id across
 * syncs), as one pure rule for every adapter: the provider's own id when it gives one (a repeat of
 * it in the same answer is the same transaction and is dropped), else a hash of the fields that do
 * not change, with an occurrence number for identical twins (two equal coffees on one day).
 */
import { createHash } from 'node:crypto';

/**
 * One answer's id assigner. `prefix` keeps adapters' derived ids apart (`ob`, `eb`, `gc`). The
 * assigner returns undefined for a provider id already seen in this answer (skip it).
 */
export function transactionIdAssigner(prefix: string): (providerId: string | undefined, stableFields: readonly string[]) => string | undefined {
  const seen = new Map<string, number>();
  return (providerId, stableFields) => {
    if (providerId !== undefined && providerId !== '') {
      if (seen.has(providerId)) return undefined;
      seen.set(providerId, 1);
      return providerId;
    }
    const base = `${prefix}-${createHash('sha256').update(stableFields.join('|')).digest('hex').slice(0, 32)}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}-${n}`;
  };
}
