/**
 * Operator commands that talk to a running Mooring over HTTP (so they work the same with the
 * embedded database, which only the server process may open, and with PostgreSQL). `keys` is the
 * exception: it works on the database itself (see keys.ts).
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { resolveAdminToken } from '../admin/token.ts';
import { keysCommand } from './keys.ts';

const HELP = `Usage: mooring <command> [options]

Commands:
  start                      Run the server: API, OpenID provider, a sync worker and (MOORING_SANDBOX, on
                             unless the providers file lists providers) the sandbox banks
  api                        Run only the API (for deployments with separate workers)
  worker                     Run only a sync worker (scheduler, sync jobs); needs DATABASE_URL to share work
  migrate                    Apply database migrations and exit
  register-client            Register an API client (RFC 7591) on a running server
      --name NAME                client_name (required)
      --redirect-uri URI         a redirect URI; repeat for several (required)
      --scope "S1 S2"            API scopes the client may request (default: all)
      --auth-method METHOD       client_secret_basic (default), client_secret_post or private_key_jwt
      --jwks FILE                JSON file with the client's public JWKS (required for private_key_jwt)
      --request-object-alg ALG   request_object_signing_alg (default HS256 for secrets, RS256 for keys)
      --url URL                  the server (default: PUBLIC_URL)
  webhook set                Set an API client's webhook URL (prints the signing secret)
      --client CLIENT_ID         the API client (required)
      --url URL                  where events are POSTed (required)
      --rotate-secret            issue a new signing secret
  webhook delete             Stop webhook deliveries to a client (--client CLIENT_ID)
  keys rotate                Re-seal stored secrets under MOORING_ENCRYPTION_KEY (old keys in
                             MOORING_ENCRYPTION_PREVIOUS_KEYS); works on the database directly
  providers check [FILE]     Check a providers file (default MOORING_PROVIDERS_FILE) as start-up
                             would, without a database: lists its providers and every problem
  help                       Show this help

The admin token comes from MOORING_ADMIN_TOKEN or the data directory (MOORING_DATA_DIR).
Your own providers are listed in the JSON or YAML file MOORING_PROVIDERS_FILE.`;

async function registerClient(args: string[], config: Config): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      name: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      scope: { type: 'string' },
      'auth-method': { type: 'string', default: 'client_secret_basic' },
      jwks: { type: 'string' },
      'request-object-alg': { type: 'string' },
      url: { type: 'string' },
    },
    strict: true,
  });
  const problems: string[] = [];
  if (values.name === undefined) problems.push('--name is required');
  if (values['redirect-uri'] === undefined || values['redirect-uri'].length === 0) problems.push('--redirect-uri is required');
  const method = values['auth-method'];
  if (!['client_secret_basic', 'client_secret_post', 'private_key_jwt'].includes(method)) problems.push('--auth-method must be client_secret_basic, client_secret_post or private_key_jwt');
  if (method === 'private_key_jwt' && values.jwks === undefined) problems.push('--jwks FILE is required for private_key_jwt');
  let jwks: unknown;
  if (values.jwks !== undefined) {
    try {
      jwks = JSON.parse(fs.readFileSync(values.jwks, 'utf8'));
    } catch (err) {
      problems.push(`--jwks: cannot read ${values.jwks}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (problems.length > 0) {
    console.error(`mooring register-client: ${problems.join('; ')}\n\n${HELP}`);
    return 2;
  }
  const base = (values.url ?? config.publicUrl).replace(/\/+$/, '');
  const { token } = resolveAdminToken(config.adminToken, config.dataDir);
  const body = {
    client_name: values.name,
    redirect_uris: values['redirect-uri'],
    token_endpoint_auth_method: method,
    ...(values.scope !== undefined ? { scope: values.scope } : {}),
    ...(jwks !== undefined ? { jwks } : {}),
    request_object_signing_alg: values['request-object-alg'] ?? (method === 'private_key_jwt' ? 'RS256' : 'HS256'),
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
  };
  let res: Response;
  try {
    res = await fetch(`${base}/oidc/reg`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  } catch (err) {
    console.error(`mooring register-client: cannot reach ${base} (${err instanceof Error ? err.message : String(err)}). Start the server with "npm start" or pass --url.`);
    return 1;
  }
  const text = await res.text();
  if (res.status !== 201) {
    console.error(`mooring register-client: the server answered ${res.status}: ${text}`);
    if (res.status === 401) console.error('Check the admin token (MOORING_ADMIN_TOKEN or the file in the data directory).');
    return 1;
  }
  const client = JSON.parse(text) as Record<string, unknown>;
  console.log(JSON.stringify(client, null, 2));
  console.error(`\nRegistered. client_id: ${String(client.client_id)}${client.client_secret !== undefined ? ' (the client_secret above is shown only now)' : ''}`);
  return 0;
}

async function adminCall(config: Config, base: string | undefined, method: string, path: string, body?: unknown): Promise<{ status: number; text: string } | null> {
  const url = (base ?? config.publicUrl).replace(/\/+$/, '');
  const { token } = resolveAdminToken(config.adminToken, config.dataDir);
  try {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, text: await res.text() };
  } catch (err) {
    console.error(`mooring: cannot reach ${url} (${err instanceof Error ? err.message : String(err)}). Start the server with "npm start" or pass --url.`);
    return null;
  }
}

async function webhook(args: string[], config: Config): Promise<number> {
  const [action, ...rest] = args;
  const { values } = parseArgs({ args: rest, options: { client: { type: 'string' }, url: { type: 'string' }, 'rotate-secret': { type: 'boolean' }, server: { type: 'string' } }, strict: true });
  if (values.client === undefined || (action === 'set' && values.url === undefined) || (action !== 'set' && action !== 'delete')) {
    console.error(`mooring webhook: use "webhook set --client ID --url URL" or "webhook delete --client ID"\n\n${HELP}`);
    return 2;
  }
  const path = `/admin/clients/${encodeURIComponent(values.client)}/webhook`;
  const res = action === 'set'
    ? await adminCall(config, values.server, 'PUT', path, { url: values.url, ...(values['rotate-secret'] === true ? { rotateSecret: true } : {}) })
    : await adminCall(config, values.server, 'DELETE', path);
  if (res === null) return 1;
  if (res.status >= 300) {
    console.error(`mooring webhook: the server answered ${res.status}: ${res.text}`);
    return 1;
  }
  console.log(action === 'set' ? res.text : `Webhook deliveries to ${values.client} stopped.`);
  return 0;
}

export async function runCli(command: string, args: string[], config: Config): Promise<number> {
  if (command === 'register-client') return registerClient(args, config);
  if (command === 'webhook') return webhook(args, config);
  if (command === 'keys') return keysCommand(args, config);
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP);
    return 0;
  }
  console.error(`mooring: unknown command "${command}"\n\n${HELP}`);
  return 2;
}
