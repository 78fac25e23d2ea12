/**
 * A client authenticates only with its registered token_endpoint_auth_method. oidc-provider treats
 * client_secret_basic and client_secret_post as one; this tells them apart by where the secret came
 * from (an Authorization: Basic header or a client_secret body parameter) before the secret is compared.
 */
import Provider, { errors } from 'oidc-provider';

type SecretMethod = 'client_secret_basic' | 'client_secret_post';

function secretMethodUsed(): SecretMethod | null {
  const ctx = Provider.ctx;
  if (ctx === undefined) return null;
  if (typeof ctx.oidc?.params?.client_secret === 'string' && ctx.oidc.params.client_secret !== '') return 'client_secret_post';
  if (/^basic\s/i.test(ctx.headers.authorization ?? '')) return 'client_secret_basic';
  return null;
}

/** Wraps the provider's secret comparison (call after anything else that replaces it). */
export function enforceClientAuthMethod(provider: Provider): void {
  const proto = provider.Client.prototype as { compareClientSecret(this: InstanceType<Provider['Client']>, actual: string): Promise<boolean> | boolean };
  const compare = proto.compareClientSecret;
  proto.compareClientSecret = function compareClientSecret(actual: string) {
    const used = secretMethodUsed();
    const registered = this.clientAuthMethod;
    if (used !== null && used !== registered) {
      throw new errors.InvalidClientAuth(`this client is registered for ${registered}; it cannot authenticate with ${used}`);
    }
    return compare.call(this, actual);
  };
}
