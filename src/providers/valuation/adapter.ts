/**
 * Valuation providers: Zoopla and Mouseprice value a property (postcode + house number), Autotrader a
 * vehicle (registration). The journey is a form asking for the asset; the grant is the provider's
 * asset id; a fetch returns one account holding the latest (monthly) value and no transactions.
 * API: see src/sandbox/banks/valuation.ts.
 */
import Type from 'typebox';
import { Compile } from 'typebox/compile';
import type { CatalogEntry } from '../catalog.ts';
import { atEdge, callProvider, checkShape, decimalToMinor, HttpStatusFailure, providerDate, ResponseShapeFailure, type FailureClassifier } from '../http.ts';
import { ProviderError, type FormField, type ProviderAdapter } from '../provider.ts';

export interface ValuationAdapterOptions {
  /** Mooring's partner credentials at the valuation provider. */
  clientId?: string;
  clientSecret: string;
  timeoutMs: number;
}

const PROPERTY_FIELDS: FormField[] = [
  { name: 'houseNumber', label: 'House number or name', type: 'text' },
  { name: 'postcode', label: 'Postcode', type: 'text' },
];
const VEHICLE_FIELDS: FormField[] = [{ name: 'registration', label: 'Vehicle registration', type: 'text', hint: 'For example AB12 CDE' }];

const AssetAnswer = Compile(Type.Object({ assetId: Type.String({ minLength: 1, maxLength: 100 }), description: Type.String() }));
const Grant = Compile(Type.Object({ assetId: Type.String({ minLength: 1 }), description: Type.String() }));
const Valuation = Compile(
  Type.Object({ value: Type.String(), currency: Type.String({ pattern: '^[A-Z]{3}$' }), valuationDate: Type.String(), description: Type.Optional(Type.String()) }),
);

const isVehicle = (p: CatalogEntry): boolean => p.type === 'autotrader';

const errorOf = (f: HttpStatusFailure): string | undefined => {
  const body = f.body as { error?: unknown } | undefined;
  return typeof body === 'object' && body !== null && typeof body.error === 'string' ? body.error : undefined;
};

const classifyJourney = (p: CatalogEntry): FailureClassifier => (f) => {
  const error = errorOf(f);
  if (error === 'invalid_postcode') return { kind: 'invalid_input', detail: 'Enter a valid UK postcode' };
  if (error === 'invalid_house_number') return { kind: 'invalid_input', detail: 'Enter the house number or name' };
  if (error === 'invalid_registration') return { kind: 'invalid_input', detail: 'Enter a valid UK vehicle registration' };
  if (error === 'asset_not_found') return { kind: 'invalid_input', detail: `${p.name} could not find that ${isVehicle(p) ? 'vehicle' : 'property'}` };
  if (f.status === 400) return { kind: 'invalid_input', detail: `${p.name} did not accept what was entered` };
  return undefined;
};

/** An asset the provider no longer tracks must be connected again. */
const classifyData: FailureClassifier = (f) => (errorOf(f) === 'asset_not_found' ? 'credentials' : undefined);

export function createValuationAdapter(opts: ValuationAdapterOptions): ProviderAdapter {
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(opts.clientId ?? 'mooring')}:${encodeURIComponent(opts.clientSecret)}`).toString('base64')}`;
  const readGrant = (p: CatalogEntry, grant: unknown) => {
    if (!Grant.Check(grant)) throw new ProviderError('credentials', `The stored asset for ${p.name} is unusable; connect it again`);
    return grant;
  };
  const assetUrl = (p: CatalogEntry, assetId: string): string => `${p.baseUrl}/assets/${encodeURIComponent(assetId)}`;

  return {
    startAuthorisation: async ({ provider }) => ({
      kind: 'form',
      fields: isVehicle(provider) ? VEHICLE_FIELDS : PROPERTY_FIELDS,
      message: isVehicle(provider) ? `Which vehicle should ${provider.name} value?` : `Which property should ${provider.name} value?`,
      pending: { step: 'asset' },
    }),

    completeAuthorisation: ({ provider, input }) =>
      atEdge(provider.name, classifyJourney(provider), async () => {
        const field = (name: string): string => (input[name] ?? '').trim();
        let body: Record<string, string>;
        if (isVehicle(provider)) {
          if (field('registration') === '') throw new ProviderError('invalid_input', 'Enter the vehicle registration');
          body = { registration: field('registration') };
        } else {
          if (field('postcode') === '' || field('houseNumber') === '') throw new ProviderError('invalid_input', 'Enter the house number and postcode');
          body = { postcode: field('postcode'), houseNumber: field('houseNumber') };
        }
        const answer = await callProvider({ method: 'POST', url: `${provider.baseUrl}/assets`, endpoint: '/assets', headers: { authorization: basic }, json: body, timeoutMs: opts.timeoutMs });
        const asset = checkShape(AssetAnswer, answer, 'the asset');
        return { kind: 'done', grant: { assetId: asset.assetId, description: asset.description }, ref: asset.assetId };
      }),

    fetch: (input) =>
      atEdge(input.provider.name, classifyData, async () => {
        const { provider } = input;
        const grant = readGrant(provider, input.grant);
        const answer = await callProvider({ method: 'GET', url: `${assetUrl(provider, grant.assetId)}/valuation`, endpoint: '/assets/{assetId}/valuation', headers: { authorization: basic }, timeoutMs: opts.timeoutMs });
        const valuation = checkShape(Valuation, answer, 'the valuation');
        const valuedAt = providerDate(valuation.valuationDate, 'the valuation date');
        const valueMinor = decimalToMinor(valuation.value, valuation.currency);
        if (valueMinor < 0) throw new ResponseShapeFailure('a valuation is negative');
        return {
          grant,
          asOf: valuedAt,
          accounts: [{
            providerAccountId: grant.assetId,
            accountName: valuation.description ?? grant.description,
            type: isVehicle(provider) ? 'asset' : 'properties:residential',
            accountType: 'personal',
            currency: valuation.currency,
            balanceMinor: valueMinor,
            balanceDate: valuedAt,
          }],
          transactions: [],
          partial: false,
        };
      }),

    revoke: (provider, grant) =>
      atEdge(provider.name, classifyData, async () => {
        if (!Grant.Check(grant)) return;
        try {
          await callProvider({ method: 'DELETE', url: assetUrl(provider, grant.assetId), endpoint: '/assets/{assetId}', headers: { authorization: basic }, timeoutMs: opts.timeoutMs });
        } catch (err) {
          if (err instanceof HttpStatusFailure && (err.status === 404 || err.status === 410)) return;
          throw err;
        }
      }),
  };
}
