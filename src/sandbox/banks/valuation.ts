/**
 * The valuation sandbox providers: Zoopla and Mouseprice value a property (postcode + house number),
 * Autotrader a vehicle (registration). Values change monthly. Every call authenticates the partner
 * (HTTP Basic, client `mooring`). Routes under `/sandbox/valuation/:slug`:
 *   POST   /assets                      { postcode, houseNumber } | { registration } → 201 { assetId, description }
 *   GET    /assets/:assetId/valuation   → { assetId, description, value, currency, valuationDate }
 *   DELETE /assets/:assetId             → 204
 * An asset starts as `user_ok` (there is no login to type a username into); the sandbox control
 * API switches it. Each valuation call counts one sync.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { CatalogEntry } from '../../providers/catalog.ts';
import { behaviourDelay, RATE_LIMIT_RETRY_AFTER_SECONDS, syncOutcome } from './behaviours.ts';
import { decimalAmount, monthIndexOf, monthStart, propertyValueMinor, vehicleValueMinor } from './generator.ts';
import { BankError, clientAuthenticated, providerGate, providerOf, renderBankErrors, type SandboxBankDeps } from './http.ts';
import { countSync, getAsset, insertAsset, removeAsset, type AssetRow } from './store.ts';

const POSTCODE = /^([A-Z]{1,2}\d[A-Z\d]?)\s*(\d[A-Z]{2})$/;
const REGISTRATION = /^[A-Z0-9]{2,8}$/;
/** The sandbox finds no property in the ZZ postcode area and no vehicle registered ZZ…, so journeys can meet "not found". */
const NOT_FOUND_PREFIX = 'ZZ';
const VEHICLES = ['Ford Fiesta', 'Volkswagen Golf', 'Vauxhall Corsa', 'BMW 3 Series', 'Toyota Yaris', 'Nissan Qashqai'];

const Slug = Type.Object({ slug: Type.String() });
const SlugAndAsset = Type.Object({ slug: Type.String(), assetId: Type.String() });
const AssetBody = Type.Object({
  postcode: Type.Optional(Type.String({ maxLength: 20 })),
  houseNumber: Type.Optional(Type.String({ maxLength: 50 })),
  registration: Type.Optional(Type.String({ maxLength: 20 })),
});

const assetSeed = (a: Pick<AssetRow, 'providerId' | 'postcode' | 'houseNumber' | 'registration'>): string =>
  [a.providerId, a.postcode ?? '', (a.houseNumber ?? '').toLowerCase(), a.registration ?? ''].join(':');

function describe(a: Pick<AssetRow, 'providerId' | 'postcode' | 'houseNumber' | 'registration'>): string {
  if (a.registration !== null) {
    const seed = assetSeed(a);
    const n = [...seed].reduce((acc, ch) => (acc * 31 + ch.charCodeAt(0)) >>> 0, 7);
    return `${2012 + (n % 12)} ${VEHICLES[n % VEHICLES.length] ?? 'Car'} (${a.registration})`;
  }
  return `${a.houseNumber ?? ''}, ${a.postcode ?? ''}`;
}

function requirePartner(deps: SandboxBankDeps, req: FastifyRequest): void {
  if (!clientAuthenticated(req, deps.sandboxClientSecret)) {
    throw new BankError(401, 'invalid_client', 'Partner authentication failed', { 'www-authenticate': 'Basic realm="sandbox"' });
  }
}

function assetIdentity(provider: CatalogEntry, body: { postcode?: string; houseNumber?: string; registration?: string }) {
  if (provider.type === 'autotrader') {
    const registration = (body.registration ?? '').replace(/\s+/g, '').toUpperCase();
    if (!REGISTRATION.test(registration)) throw new BankError(400, 'invalid_registration', 'registration must be a UK vehicle registration');
    if (registration.startsWith(NOT_FOUND_PREFIX)) throw new BankError(404, 'asset_not_found', 'No vehicle is registered with that registration');
    return { assetKind: 'vehicle' as const, postcode: null, houseNumber: null, registration };
  }
  const match = POSTCODE.exec((body.postcode ?? '').trim().toUpperCase());
  if (match === null) throw new BankError(400, 'invalid_postcode', 'postcode must be a UK postcode');
  const houseNumber = (body.houseNumber ?? '').trim();
  if (houseNumber === '') throw new BankError(400, 'invalid_house_number', 'houseNumber is required');
  const postcode = `${match[1]} ${match[2]}`;
  if (postcode.startsWith(NOT_FOUND_PREFIX)) throw new BankError(404, 'asset_not_found', 'No property was found at that address');
  return { assetKind: 'property' as const, postcode, houseNumber, registration: null };
}

export async function valuationRoutes(app: FastifyInstance, deps: SandboxBankDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.addHook('onRequest', providerGate(deps, 'valuation'));
  r.addHook('onRequest', async (req) => requirePartner(deps, req));
  renderBankErrors(r, (f) => ({ error: f.code, message: f.message }));
  const P = '/sandbox/valuation/:slug/assets';

  const liveAsset = async (req: FastifyRequest, assetId: string): Promise<AssetRow> => {
    const asset = await getAsset(deps.db, assetId, providerOf(req).id);
    if (asset === null || asset.status !== 'active') throw new BankError(404, 'asset_not_found', 'This asset is not tracked');
    return asset;
  };

  r.post(P, { schema: { params: Slug, body: AssetBody } }, async (req, reply) => {
    const provider = providerOf(req);
    const identity = assetIdentity(provider, req.body);
    const asset = { providerId: provider.id, ...identity, behaviour: 'user_ok', createdAt: deps.clock.now() };
    const assetId = await insertAsset(deps.db, asset);
    return reply.status(201).send({ assetId, description: describe(asset) });
  });

  r.get(`${P}/:assetId/valuation`, { schema: { params: SlugAndAsset } }, async (req) => {
    const asset = await liveAsset(req, req.params.assetId);
    await behaviourDelay(asset.behaviour, deps.slowCallMs);
    const syncNumber = await countSync(deps.db, 'sandbox_valuation_assets', asset.id);
    const outcome = syncOutcome(asset.behaviour, syncNumber, false);
    if (outcome === 'provider_error') throw new BankError(500, 'internal_error', 'Valuations are temporarily unavailable');
    // No consent to expire here: user_expired is refused as user_revoked is.
    if (outcome === 'revoked' || outcome === 'expired') throw new BankError(403, 'access_revoked', 'The owner has withdrawn access to this valuation');
    if (outcome === 'rate_limited') {
      throw new BankError(429, 'rate_limited', 'Too many valuation requests; try again later', { 'retry-after': String(RATE_LIMIT_RETRY_AFTER_SECONDS) });
    }
    // Partial data and one-time codes make no sense for a single value: those behaviours succeed.
    const month = monthIndexOf(asset.behaviour === 'user_stale' ? asset.createdAt : deps.clock.now());
    const seed = assetSeed(asset);
    const valueMinor = asset.assetKind === 'vehicle' ? vehicleValueMinor(seed, month) : propertyValueMinor(seed, month);
    return {
      assetId: asset.id,
      description: describe(asset),
      value: decimalAmount(valueMinor),
      currency: 'GBP',
      valuationDate: monthStart(month).toISOString(),
    };
  });

  r.delete(`${P}/:assetId`, { schema: { params: SlugAndAsset } }, async (req, reply) => {
    const asset = await liveAsset(req, req.params.assetId);
    await removeAsset(deps.db, asset.id);
    return reply.status(204).send();
  });
}
