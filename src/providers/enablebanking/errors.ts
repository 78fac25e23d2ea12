/**
 * What Enable Banking's answers mean for Mooring: its ErrorResponse codes (`{ message, code, error,
 * detail }`) as ProviderError kinds, and a session's own status (GET /sessions/{id}) as the reason a
 * call was refused. The HTTP status decides whatever these leave open (../http.ts).
 */
import type { FailureClassifier } from '../http.ts';
import { ProviderError } from '../provider.ts';

/** The error codes (ErrorResponse.error) that say the session itself is no longer usable. */
const SESSION_REFUSALS = new Set(['REVOKED_SESSION', 'CLOSED_SESSION', 'SESSION_DOES_NOT_EXIST', 'WRONG_SESSION_STATUS']);

export const errorCodeOf = (body: unknown): string | undefined => {
  const error = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
  return typeof error === 'string' ? error : undefined;
};

/** Enable Banking's ErrorResponse codes that mean something more specific than their HTTP status. */
export const classifyEb: FailureClassifier = (f) => {
  const code = errorCodeOf(f.body);
  switch (code) {
    case 'ASPSP_RATE_LIMIT_EXCEEDED':
      return 'rate_limited';
    case 'ASPSP_ERROR':
      return 'unavailable';
    case 'ASPSP_TIMEOUT':
      return 'timeout';
    case 'ASPSP_PSU_ACTION_REQUIRED':
      return 'mfa_required';
    case 'EXPIRED_SESSION':
      return 'consent_expired';
    case 'UNAUTHORIZED_ACCESS':
    case 'AUTHORIZATION_NOT_PROVIDED':
    case 'ACCESS_DENIED':
    case 'UNAUTHORIZED_IP':
      return { kind: 'unavailable', detail: "Enable Banking refused Mooring's application; the operator must check this provider's applicationId and privateKey" };
    case 'REDIRECT_URI_NOT_ALLOWED':
      return { kind: 'unavailable', detail: "Enable Banking does not accept Mooring's callback URL; the operator must whitelist <PUBLIC_URL>/connect/callback for the application" };
    case 'WRONG_ASPSP_PROVIDED':
      return { kind: 'unavailable', detail: 'Enable Banking does not know the bank this provider names; the operator must check settings.aspsp' };
    default:
      if (code !== undefined && SESSION_REFUSALS.has(code)) return 'credentials';
      if (f.status === 429) return 'rate_limited';
      return undefined;
  }
};

/**
 * What a session's status says about a refused call, or undefined when it explains nothing.
 * `EXPIRED` (or a `valid_until` that has passed) is an expired consent, at `valid_until` when that
 * has passed (else the sync's time: the bank ended it early).
 */
export function sessionRefusal(providerName: string, status: string, validUntil: Date | null, now: Date): ProviderError | undefined {
  const lapsed = validUntil !== null && validUntil <= now ? validUntil : undefined;
  const expired = (): ProviderError =>
    new ProviderError('consent_expired', `This connection's consent expired at ${providerName}; the user must authorise again`, { expiredAt: lapsed });
  switch (status) {
    case 'AUTHORIZED':
      return lapsed === undefined ? undefined : expired();
    case 'EXPIRED':
      return expired();
    case 'REVOKED':
      return new ProviderError('credentials', `The user withdrew this connection's consent at ${providerName}; they must authorise again`);
    case 'CANCELLED':
      return new ProviderError('credentials', `The authorisation of this connection was cancelled at ${providerName}; the user must authorise again`);
    case 'CLOSED':
      return new ProviderError('credentials', `This connection's session at ${providerName} was closed; the user must authorise again`);
    case 'INVALID':
      return new ProviderError('credentials', `The authorisation of this connection failed at ${providerName}; the user must authorise again`);
    default:
      return new ProviderError('credentials', `This connection's session at ${providerName} is not authorised; the user must authorise again`);
  }
}

