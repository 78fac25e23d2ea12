/**
 * Credential-based ("legacy") providers such as Aviva. Mooring renders the forms: username and
 * password, then a one-time code when the provider asks for one. The grant is the provider's
 * credential token. API: see src/sandbox/banks/legacy.ts.
 */
import Type from 'typebox';
import { Compile } from 'typebox/compile';
import { atEdge, callProvider, checkShape, decimalToMinor, HttpStatusFailure, providerDate, ResponseShapeFailure, type FailureClassifier } from '../http.ts';
import { ProviderError, type FormField, type JourneyStep, type ProviderAccount, type ProviderAdapter, type ProviderTransaction } from '../provider.ts';

export interface LegacyAdapterOptions {
  timeoutMs: number;
}

/** The header that tells the provider the customer is present (so it does not ask for a code). */
export const LEGACY_CUSTOMER_IP_HEADER = 'x-customer-ip-address';
const UNKNOWN_CUSTOMER_IP = '0.0.0.0';

const CREDENTIAL_FIELDS: FormField[] = [
  { name: 'username', label: 'Username', type: 'text' },
  { name: 'password', label: 'Password', type: 'password' },
];
const OTP_FIELDS: FormField[] = [{ name: 'otp', label: 'One-time code', type: 'text', hint: 'Enter the code sent to your phone' }];

const LoginAnswer = Compile(Type.Object({ credentialId: Type.String({ minLength: 1 }), credentialToken: Type.String({ minLength: 1 }) }));
const Grant = Compile(Type.Object({ credentialId: Type.String({ minLength: 1 }), credentialToken: Type.String({ minLength: 1 }) }));
const Pending = Compile(
  Type.Union([Type.Object({ step: Type.Literal('credentials') }), Type.Object({ step: Type.Literal('otp'), challenge: Type.String({ minLength: 1 }) })]),
);
const Portfolio = Compile(
  Type.Object({
    asOf: Type.String(),
    accounts: Type.Array(
      Type.Object({
        id: Type.String({ minLength: 1, maxLength: 100 }),
        name: Type.String(),
        type: Type.String(),
        currency: Type.String({ pattern: '^[A-Z]{3}$' }),
        value: Type.String(),
        transactions: Type.Union([
          Type.Null(),
          Type.Array(Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), date: Type.String(), amount: Type.String(), description: Type.String() })),
        ]),
      }),
    ),
  }),
);

const MONEYHUB_TYPE: Record<string, string> = { pension: 'pension', investment: 'investment', savings: 'savings', current: 'cash:current', card: 'card' };

const errorOf = (f: HttpStatusFailure): string | undefined => {
  const body = f.body as { error?: unknown } | undefined;
  return typeof body === 'object' && body !== null && typeof body.error === 'string' ? body.error : undefined;
};

/** During a journey, a refused login or code is the user's input, not a broken connection. */
const classifyJourney = (name: string): FailureClassifier => (f) => {
  const error = errorOf(f);
  if (error === 'invalid_otp') return { kind: 'invalid_input', detail: 'That one-time code was not accepted; check it and try again' };
  if (error === 'invalid_credentials') return { kind: 'invalid_input', detail: `${name} did not accept that username and password` };
  if (error === 'challenge_expired') return { kind: 'journey_rejected', detail: `The login at ${name} expired; start again` };
  // Asked for below (the journey continues with the code form); named so, the call log does not show it as refused credentials.
  if (error === 'otp_required') return 'mfa_required';
  if (f.status === 400) return { kind: 'invalid_input', detail: `${name} did not accept what was entered` };
  return undefined;
};

const classifyData: FailureClassifier = (f) => (errorOf(f) === 'otp_required' ? 'mfa_required' : undefined);

export function createLegacyAdapter(opts: LegacyAdapterOptions): ProviderAdapter {
  const post = (baseUrl: string, endpoint: string, json: unknown): Promise<unknown> => callProvider({ method: 'POST', url: `${baseUrl}${endpoint}`, endpoint, json, timeoutMs: opts.timeoutMs });

  const loggedIn = (answer: unknown): JourneyStep => {
    const login = checkShape(LoginAnswer, answer, 'the login answer');
    return { kind: 'done', grant: { credentialId: login.credentialId, credentialToken: login.credentialToken }, ref: login.credentialId };
  };

  return {
    startAuthorisation: async (input) => ({
      kind: 'form',
      fields: CREDENTIAL_FIELDS,
      message: `Log in with your ${input.provider.name} username and password.`,
      pending: { step: 'credentials' },
    }),

    completeAuthorisation: (input) => {
      const { provider } = input;
      return atEdge(provider.name, classifyJourney(provider.name), async () => {
        if (!Pending.Check(input.pending)) throw new ResponseShapeFailure('the pending journey state is unreadable');
        const pending = input.pending;
        if (pending.step === 'otp') {
          const otp = (input.input.otp ?? '').trim();
          if (otp === '') throw new ProviderError('invalid_input', 'Enter the one-time code');
          return loggedIn(await post(provider.baseUrl, '/login/otp', { challenge: pending.challenge, otp }));
        }
        const username = (input.input.username ?? '').trim();
        if (username === '') throw new ProviderError('invalid_input', 'Enter your username');
        try {
          return loggedIn(await post(provider.baseUrl, '/login', { username, password: input.input.password ?? '' }));
        } catch (err) {
          if (!(err instanceof HttpStatusFailure && err.status === 401 && errorOf(err) === 'otp_required')) throw err;
          const challenge = (err.body as { challenge?: unknown }).challenge;
          if (typeof challenge !== 'string' || challenge === '') throw new ResponseShapeFailure('an OTP request carries no challenge');
          return { kind: 'form', fields: OTP_FIELDS, message: `${provider.name} sent a one-time code to your phone.`, pending: { step: 'otp', challenge } };
        }
      });
    },

    fetch: (input) =>
      atEdge(input.provider.name, classifyData, async () => {
        const { provider } = input;
        if (!Grant.Check(input.grant)) throw new ProviderError('credentials', `The stored login for ${provider.name} is unusable; the user must log in again`);
        const url = new URL(`${provider.baseUrl}/portfolio`);
        if (input.since !== null) url.searchParams.set('from', input.since.toISOString());
        const answer = await callProvider({
          method: 'GET', url: url.toString(), endpoint: '/portfolio', timeoutMs: opts.timeoutMs,
          headers: {
            authorization: `Bearer ${input.grant.credentialToken}`,
            ...(input.attended ? { [LEGACY_CUSTOMER_IP_HEADER]: input.customerIpAddress ?? UNKNOWN_CUSTOMER_IP } : {}),
          },
        });
        const portfolio = checkShape(Portfolio, answer, 'the portfolio');
        const asOf = providerDate(portfolio.asOf, 'the portfolio date');
        const accounts: ProviderAccount[] = [];
        const transactions: ProviderTransaction[] = [];
        const missing: string[] = [];
        for (const a of portfolio.accounts) {
          accounts.push({
            providerAccountId: a.id, accountName: a.name, type: MONEYHUB_TYPE[a.type] ?? 'investment', accountType: 'personal',
            currency: a.currency, balanceMinor: decimalToMinor(a.value, a.currency), balanceDate: asOf,
          });
          if (a.transactions === null) {
            missing.push(`the transactions of ${a.name}`);
            continue;
          }
          for (const t of a.transactions) {
            transactions.push({
              providerAccountId: a.id, providerTransactionId: t.id, amountMinor: decimalToMinor(t.amount, a.currency), currency: a.currency,
              date: providerDate(t.date, 'a transaction date'), status: 'posted', shortDescription: t.description, longDescription: t.description,
            });
          }
        }
        return {
          grant: input.grant, asOf, accounts, transactions, partial: missing.length > 0,
          ...(missing.length > 0 ? { partialDetail: `${provider.name} could not provide ${missing.join(', ')}` } : {}),
        };
      }),

    revoke: (provider, grant) =>
      atEdge(provider.name, classifyData, async () => {
        if (!Grant.Check(grant)) return;
        try {
          await callProvider({ method: 'POST', url: `${provider.baseUrl}/logout`, endpoint: '/logout', headers: { authorization: `Bearer ${grant.credentialToken}` }, timeoutMs: opts.timeoutMs });
        } catch (err) {
          // Already logged out, or the provider is gone: nothing left to revoke.
          if (err instanceof HttpStatusFailure && [401, 404, 410].includes(err.status)) return;
          throw err;
        }
      }),
  };
}
