/**
 * The one schema for every setting. This is the only module that reads process.env;
 * everything else receives a Config. Invalid values stop start-up with every problem listed.
 */
import net from 'node:net';
import path from 'node:path';
import { decodeKey } from './crypto/secrets.ts';
import { sandboxCatalog, type CatalogEntry } from './providers/catalog.ts';
import { loadProvidersFile, type ProvidersFile } from './providers/providers-file.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface Config {
  port: number;
  host: string;
  publicUrl: string;
  databaseUrl: string | null;
  databasePoolSize: number;
  dataDir: string;
  adminToken: string | null;
  /** MOORING_SANDBOX: serve the sandbox banks and their control API (default: on when no providers file lists a provider). */
  sandbox: boolean;
  logLevel: LogLevel;
  /** Maximum request body the API accepts, in bytes. */
  bodyLimitBytes: number;
  /** Concurrent syncs a worker process runs. */
  workerConcurrency: number;
  /** Let webhook URLs resolve to private or loopback addresses (sandbox mode always allows loopback). */
  webhookAllowPrivate: boolean;
  /** Extra latency of every sandbox bank call, in milliseconds (load testing). */
  sandboxLatencyMs: number;
  /** Sandbox only: the port of the sandbox banks' mutual-TLS listener (token, consents, resources). 0: any free port. */
  sandboxMtlsPort: number;
  /**
   * TRUST_PROXY: which proxies' X-Forwarded-For entries to believe for the client address. false: none;
   * a number: that many hops next to Mooring; a list: proxies at these addresses/CIDRs; true: every hop
   * (the client can forge its address; kept for compatibility, warned about at start-up).
   */
  trustProxy: TrustProxy;
  /** Sandbox only: where the domain clock starts on the first start of a new database (null: real time). */
  sandboxClockStart: Date | null;
  /** MOORING_ENCRYPTION_KEY (base64 of 32 bytes): seals secrets at rest. Null: embedded mode keeps one in dataDir. */
  encryptionKey: string | null;
  /** MOORING_ENCRYPTION_PREVIOUS_KEYS: older keys, still read after a rotation until `keys rotate` has run. */
  previousEncryptionKeys: string[];
  /** An operator session at /admin ends after this many minutes without use. */
  adminSessionIdleMinutes: number;
  /** MOORING_PROVIDERS_FILE (absolute), or null when the operator lists no providers. */
  providersFile: string | null;
  /** The providers the file lists (SPEC section 10), checked, with their secrets read. */
  providers: CatalogEntry[];
  /** MOORING_PROVIDER_CALL_LOG: record every call to a provider (the operator console's call log, provider health, call metrics). */
  providerCallLog: boolean;
  /** MOORING_PROVIDER_CALL_RETENTION_DAYS: recorded provider calls older than this (domain time) are pruned. */
  providerCallRetentionDays: number;
  /** MOORING_METRICS_PORT: where a worker-only process (`mooring worker`) serves /metrics; null: it serves none. API processes serve /metrics on PORT. */
  metricsPort: number | null;
  /** MOORING_METRICS_TOKEN: when set, /metrics (API and worker) needs it as a bearer token; null: /metrics is open. */
  metricsToken: string | null;
}

const MAKE_KEY_HINT = 'make one with: openssl rand -base64 32';

function encryptionProblems(c: Config): string[] {
  const problems: string[] = [];
  if (c.encryptionKey !== null && decodeKey(c.encryptionKey) === null) {
    problems.push(`MOORING_ENCRYPTION_KEY must be 32 random bytes in base64 (${MAKE_KEY_HINT})`);
  }
  if (c.encryptionKey === null && c.databaseUrl !== null) {
    problems.push(`MOORING_ENCRYPTION_KEY is required with DATABASE_URL (${MAKE_KEY_HINT}, and keep it safe: without it stored secrets cannot be read)`);
  }
  c.previousEncryptionKeys.forEach((k, i) => {
    if (decodeKey(k) === null) problems.push(`MOORING_ENCRYPTION_PREVIOUS_KEYS entry ${i + 1} must be 32 bytes in base64, like MOORING_ENCRYPTION_KEY`);
  });
  return problems;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

type Env = Record<string, string | undefined>;

/** What Fastify's trustProxy option takes, as TRUST_PROXY may set it. */
export type TrustProxy = boolean | number | string[];

/** proxy-addr's names for address ranges (Fastify's trustProxy accepts them in a list). */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

function proxyAddressProblem(entry: string): boolean {
  if (PROXY_RANGE_NAMES.includes(entry)) return false;
  const [addr = '', prefix, ...extra] = entry.split('/');
  const family = net.isIP(addr);
  if (family === 0 || extra.length > 0) return true;
  if (prefix === undefined) return false;
  const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : -1;
  return bits < 0 || bits > (family === 4 ? 32 : 128);
}

function trustProxyVar(env: Env, problems: string[]): TrustProxy {
  const raw = (env.TRUST_PROXY ?? '').trim();
  const v = raw.toLowerCase();
  if (v === '' || ['false', 'no', 'off'].includes(v)) return false;
  if (['true', 'yes', 'on'].includes(v)) return true;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    if (hops <= 100) return hops === 0 ? false : hops;
  } else {
    const entries = raw.split(',').map((e) => e.trim()).filter((e) => e !== '');
    if (entries.length > 0 && !entries.some(proxyAddressProblem)) return entries;
  }
  problems.push(`TRUST_PROXY must be false, the number of proxies in front of Mooring (0 to 100), or a comma-separated list of proxy addresses or CIDRs (got "${raw}")`);
  return false;
}

function intVar(env: Env, name: string, fallback: number, min: number, max: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
    return fallback;
  }
  return n;
}

function boolVar(env: Env, name: string, fallback: boolean, problems: string[]): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = raw.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  problems.push(`${name} must be true or false (got "${raw}")`);
  return fallback;
}

export const ADMIN_TOKEN_MIN_LENGTH = 32;
export const ADMIN_TOKEN_MIN_DISTINCT = 10;

/** Why an admin token is too weak to guard the operator's API, or null when it is good enough. */
export function adminTokenProblem(token: string): string | null {
  const distinct = new Set(token).size;
  if (token.length >= ADMIN_TOKEN_MIN_LENGTH && distinct >= ADMIN_TOKEN_MIN_DISTINCT && !/\s/.test(token)) return null;
  return `is too weak (${token.length} characters, ${distinct} different): it needs at least ${ADMIN_TOKEN_MIN_LENGTH} characters, `
    + `at least ${ADMIN_TOKEN_MIN_DISTINCT} different ones and no spaces. Make a good one with: openssl rand -base64 32`;
}

const nonEmpty = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v);

/** MOORING_SANDBOX: by default on when no real provider is configured (no providers file, or one that lists none). */
function sandboxSetting(env: Env, listedProviders: number | null, problems: string[]): boolean {
  return boolVar(env, 'MOORING_SANDBOX', listedProviders === null || listedProviders === 0, problems);
}

/** The providers file and its providers: the sandbox providers' names and ids are taken while sandbox mode is on. */
function readProviders(file: string, env: Env): ProvidersFile {
  const reserved = (listed: number) => (sandboxSetting(env, listed, []) ? sandboxCatalog('').map((e) => ({ id: e.id, name: e.name })) : []);
  return loadProvidersFile(file, { env, reserved });
}

/**
 * What `mooring providers check [file]` needs: the providers file (`file`, else MOORING_PROVIDERS_FILE)
 * checked exactly as a start would check it, without the rest of the configuration.
 */
export function checkProvidersFile(file?: string, env: Env = process.env): { providers: ProvidersFile | null; problems: string[] } {
  const problems: string[] = [];
  const chosen = file ?? nonEmpty(env.MOORING_PROVIDERS_FILE);
  if (chosen === null) {
    sandboxSetting(env, null, problems);
    return { providers: null, problems: [...problems, 'no providers file: name one, or set MOORING_PROVIDERS_FILE'] };
  }
  const providers = readProviders(chosen, env);
  sandboxSetting(env, providers.listed, problems);
  return { providers, problems: [...problems, ...providers.problems] };
}

/** PUBLIC_URL (default http://localhost:<PORT>), without a trailing slash; problems are added to `problems`. */
export function publicUrlSetting(env: Env = process.env, port = intVar(env, 'PORT', 3000, 0, 65535, []), problems: string[] = []): string {
  const raw = env.PUBLIC_URL && env.PUBLIC_URL !== '' ? env.PUBLIC_URL : `http://localhost:${port}`;
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push(`PUBLIC_URL must be an http(s) URL (got "${raw}")`);
    return raw.replace(/\/+$/, '');
  } catch {
    problems.push(`PUBLIC_URL must be an absolute URL such as https://mooring.example.com (got "${raw}")`);
    return raw;
  }
}

/** Reads and validates settings; `overrides` lets tests and the CLI set values without touching the environment. */
export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const problems: string[] = [];
  const port = intVar(env, 'PORT', 3000, 0, 65535, problems);
  const host = env.HOST && env.HOST !== '' ? env.HOST : '0.0.0.0';

  const publicUrl = publicUrlSetting(env, port, problems);

  const databaseUrl = env.DATABASE_URL && env.DATABASE_URL !== '' ? env.DATABASE_URL : null;
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must start with postgres:// or postgresql://');
  }

  const adminToken = env.MOORING_ADMIN_TOKEN && env.MOORING_ADMIN_TOKEN !== '' ? env.MOORING_ADMIN_TOKEN : null;
  const tokenProblem = adminToken === null ? null : adminTokenProblem(adminToken);
  if (tokenProblem !== null) problems.push(`MOORING_ADMIN_TOKEN ${tokenProblem}`);

  const metricsToken = nonEmpty(env.MOORING_METRICS_TOKEN);
  const metricsTokenProblem = metricsToken === null ? null : adminTokenProblem(metricsToken);
  if (metricsTokenProblem !== null) problems.push(`MOORING_METRICS_TOKEN ${metricsTokenProblem}`);

  const logLevelRaw = (env.LOG_LEVEL ?? 'info').toLowerCase();
  const logLevel = (LOG_LEVELS as readonly string[]).includes(logLevelRaw) ? (logLevelRaw as LogLevel) : 'info';
  if (logLevel !== logLevelRaw) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${env.LOG_LEVEL}")`);

  let sandboxClockStart: Date | null = null;
  const clockStartRaw = env.MOORING_SANDBOX_CLOCK_START;
  if (clockStartRaw !== undefined && clockStartRaw !== '') {
    // UTC only, and the calendar date must exist (no rolling 2026-02-30 over into March).
    const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,3})?Z$/.exec(clockStartRaw);
    const parsed = m === null ? null : new Date(clockStartRaw);
    if (m === null || parsed === null || Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 19) !== m[1]) {
      problems.push(`MOORING_SANDBOX_CLOCK_START must be a UTC date-time such as 2026-01-14T09:00:00Z (got "${clockStartRaw}")`);
    } else {
      sandboxClockStart = parsed;
    }
  }

  const providersFile = nonEmpty(env.MOORING_PROVIDERS_FILE);
  const read = providersFile !== null && overrides.providers === undefined ? readProviders(providersFile, env) : null;

  const config: Config = {
    port,
    host,
    publicUrl,
    databaseUrl,
    databasePoolSize: intVar(env, 'DATABASE_POOL_SIZE', 10, 1, 200, problems),
    dataDir: path.resolve(env.MOORING_DATA_DIR && env.MOORING_DATA_DIR !== '' ? env.MOORING_DATA_DIR : '.mooring'),
    adminToken,
    sandbox: sandboxSetting(env, read === null ? null : read.listed, problems),
    logLevel,
    bodyLimitBytes: intVar(env, 'MOORING_BODY_LIMIT_BYTES', 100_000, 1_000, 10_000_000, problems),
    workerConcurrency: intVar(env, 'MOORING_WORKER_CONCURRENCY', 20, 1, 500, problems),
    webhookAllowPrivate: boolVar(env, 'MOORING_WEBHOOK_ALLOW_PRIVATE', false, problems),
    sandboxLatencyMs: intVar(env, 'MOORING_SANDBOX_LATENCY_MS', 0, 0, 60_000, problems),
    sandboxMtlsPort: intVar(env, 'MOORING_SANDBOX_MTLS_PORT', 3443, 0, 65535, problems),
    trustProxy: trustProxyVar(env, problems),
    sandboxClockStart,
    encryptionKey: env.MOORING_ENCRYPTION_KEY && env.MOORING_ENCRYPTION_KEY !== '' ? env.MOORING_ENCRYPTION_KEY : null,
    previousEncryptionKeys: (env.MOORING_ENCRYPTION_PREVIOUS_KEYS ?? '').split(',').map((k) => k.trim()).filter((k) => k !== ''),
    adminSessionIdleMinutes: intVar(env, 'MOORING_ADMIN_SESSION_IDLE_MINUTES', 720, 1, 7 * 24 * 60, problems),
    providersFile: null,
    providers: [],
    providerCallLog: boolVar(env, 'MOORING_PROVIDER_CALL_LOG', true, problems),
    providerCallRetentionDays: intVar(env, 'MOORING_PROVIDER_CALL_RETENTION_DAYS', 14, 1, 3650, problems),
    metricsPort: nonEmpty(env.MOORING_METRICS_PORT) === null ? null : intVar(env, 'MOORING_METRICS_PORT', 9464, 0, 65535, problems),
    metricsToken,
    ...overrides,
  };
  if (read !== null) {
    problems.push(...read.problems);
    config.providersFile = read.file;
    config.providers = read.entries;
  }
  problems.push(...encryptionProblems(config));
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
