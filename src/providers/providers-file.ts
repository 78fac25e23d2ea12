/**
 * The operator's providers file (MOORING_PROVIDERS_FILE, SPEC section 10): a JSON or YAML file
 * `{ "defaults": { … }, "providers": [ … ] }` read into catalog entries. Every problem is listed
 * with the entry's name (or number) and the field, so that one run of `mooring providers check`
 * (or one failed start) shows all of them. Secrets are read only from references:
 * `{ "env": "VAR" }` (an environment variable, from the env object given) or `{ "file": "path" }`
 * (relative to the providers file). The per-adapter settings are settings.ts.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { CatalogEntry } from './catalog.ts';
import { longestScheduledGapMs, UNATTENDED_SYNCS_PER_DAY_OPEN_BANKING } from '../syncs/cadence.ts';
import { STALE_AFTER_HOURS } from '../connections/status.ts';
import { HOUR_MS } from '../time.ts';
import { CONSENT_DAYS, FILE_ADAPTER_KINDS, IMPLEMENTED_ADAPTER_KINDS, PROVIDER_TYPES, type FileAdapterKind, type ProviderType } from './kinds.ts';
import {
  readBoolean, readEnableBankingSettings, readGoCardlessSettings, readHttpUrl, readOneOf, readOpenBankingSettings, readString,
  REPORTED, SECRET_FIELDS, SETTINGS_FIELDS, type FieldSource,
} from './settings.ts';

export interface ProvidersFile {
  /** The file, as an absolute path. */
  file: string;
  /** The providers it lists that could be read (the file is good only when there are no problems). */
  entries: CatalogEntry[];
  /** Every problem, each a full sentence naming the file, the entry and the field. */
  problems: string[];
  /** How many providers the file lists (read or not; 0 when the file itself could not be read). */
  listed: number;
}

export interface ProvidersFileOptions {
  /** Where `{ "env": "VAR" }` references are read. */
  env: Record<string, string | undefined>;
  /**
   * Providers the file's may not share a name or id with (the sandbox providers, in sandbox mode), given
   * how many providers the file lists: whether sandbox mode is on by default depends on it.
   */
  reserved?: (listed: number) => { id: string; name: string }[];
}

/** A consent longer than ten years is a mistake, and would overflow date arithmetic long before it mattered. */
export const MAX_CONSENT_DAYS = 3650;
const USER_TYPES = ['personal', 'business'] as const;
const ENTRY_FIELDS = ['name', 'type', 'adapter', 'id', 'consentDays', 'tppConsent', 'unattendedSyncsPerDay', 'staleAfterHours', 'accountTypes', 'iconUrl', 'isBeta', 'userTypes', 'settings'];
/** A staleness window of more than a year is a mistake. */
export const MAX_STALE_AFTER_HOURS = 366 * 24;
/** Fields each provider must set for itself. */
const OWN_FIELDS = ['name', 'id'];
const REFERENCE_HINT = 'use { "env": "VARIABLE" } or { "file": "path" } instead';

/** The id of a file provider without one: a stable hash of its name (renaming it changes the id; set `id` to keep one). */
export const providerIdFromName = (name: string): string => createHash('sha256').update(`mooring-provider:${name}`).digest('hex').slice(0, 32);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const errorCode = (err: unknown): string => {
  const e = err as { code?: unknown; message?: unknown };
  return typeof e.code === 'string' ? e.code : typeof e.message === 'string' ? e.message : String(err);
};

function parseFile(file: string, text: string): { ok: true; value: unknown } | { ok: false; problem: string } {
  try {
    if (path.extname(file).toLowerCase() === '.json') return { ok: true, value: JSON.parse(text) };
    return { ok: true, value: parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 }) };
  } catch (err) {
    const kind = path.extname(file).toLowerCase() === '.json' ? 'JSON' : 'YAML';
    return { ok: false, problem: `is not valid ${kind}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` };
  }
}

/**
 * A settings value: a reference is read (env or file), a literal secret refused, anything else
 * answered as written. Problems go to `problem(message)`; answers REPORTED after one.
 */
function resolveSetting(field: string, raw: unknown, ctx: { dir: string; env: ProvidersFileOptions['env']; problem: (message: string) => void }): unknown {
  if (isObject(raw) && ('env' in raw || 'file' in raw)) {
    const keys = Object.keys(raw);
    const [kind] = keys;
    const target = kind === undefined ? undefined : raw[kind];
    if (keys.length !== 1 || typeof target !== 'string' || target === '') {
      ctx.problem(`a reference is { "env": "VARIABLE" } or { "file": "path" }, one of them, with a non-empty string (got ${JSON.stringify(raw)})`);
      return REPORTED;
    }
    if (kind === 'env') {
      const value = ctx.env[target];
      if (value === undefined || value === '') {
        ctx.problem(`environment variable ${target} is ${value === undefined ? 'not set' : 'empty'}`);
        return REPORTED;
      }
      return value;
    }
    let text: string;
    try {
      text = fs.readFileSync(path.resolve(ctx.dir, target), 'utf8');
    } catch (err) {
      ctx.problem(`cannot read file ${target} (${errorCode(err)})`);
      return REPORTED;
    }
    const value = text.replace(/\s+$/, '');
    if (value === '') {
      ctx.problem(`file ${target} is empty`);
      return REPORTED;
    }
    return value;
  }
  if (typeof raw === 'string' && SECRET_FIELDS.includes(field)) {
    ctx.problem(`a secret is never written in the providers file: ${REFERENCE_HINT}`);
    return REPORTED;
  }
  if (typeof raw === 'string' && /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(raw)) {
    ctx.problem(`holds a private key written in the providers file: ${REFERENCE_HINT}`);
    return REPORTED;
  }
  return raw;
}

interface EntryContext {
  dir: string;
  env: ProvidersFileOptions['env'];
  defaults: Json;
  problem(field: string, message: string): void;
}

/** The entry's own value of a field, else the default's; problems name which it was. */
function entrySource(own: Json, ctx: EntryContext): FieldSource {
  const fromDefaults = (field: string): boolean => !(field in own) && field in ctx.defaults;
  return {
    get: (field) => (field in own ? own[field] : ctx.defaults[field]),
    problem: (field, message) => ctx.problem(fromDefaults(field) ? `${field} (from defaults)` : field, message),
  };
}

/** The entry's settings over the defaults' (only the fields its adapter knows), references resolved once each. */
function settingsSource(adapter: FileAdapterKind, own: Json, defaults: Json, ctx: EntryContext): FieldSource {
  const known: readonly string[] = SETTINGS_FIELDS[adapter];
  for (const field of Object.keys(own).filter((f) => !known.includes(f))) {
    ctx.problem(`settings.${field}`, `unknown field for the ${adapter} adapter (its settings are ${known.join(', ')})`);
  }
  const fromDefaults = (field: string): boolean => {
    const top = field.split('.')[0] ?? field;
    return !(top in own) && top in defaults;
  };
  const problem = (field: string, message: string): void => ctx.problem(`settings.${field}${fromDefaults(field) ? ' (from defaults)' : ''}`, message);
  const cache = new Map<string, unknown>();
  return {
    get(field) {
      if (cache.has(field)) return cache.get(field);
      const raw = field in own ? own[field] : known.includes(field) ? defaults[field] : undefined;
      const value = resolveSetting(field, raw, { dir: ctx.dir, env: ctx.env, problem: (m) => problem(field, m) });
      cache.set(field, value);
      return value;
    },
    problem,
  };
}

function readAccountTypes(src: FieldSource): { name: string; beta: boolean }[] | undefined {
  const v = src.get('accountTypes');
  if (v === undefined) return [];
  const shape = 'a list of { "name": "cash:current", "beta": false }';
  if (!Array.isArray(v)) {
    src.problem('accountTypes', `must be ${shape}`);
    return undefined;
  }
  const out: { name: string; beta: boolean }[] = [];
  let ok = true;
  v.forEach((item: unknown, i) => {
    const at = `accountTypes[${i}]`;
    if (!isObject(item)) {
      src.problem(at, `must be an object { "name", "beta" } (${shape})`);
      ok = false;
      return;
    }
    const inner: FieldSource = { get: (f) => item[f], problem: (f, m) => src.problem(`${at}.${f}`, m) };
    for (const extra of Object.keys(item).filter((k) => k !== 'name' && k !== 'beta')) inner.problem(extra, 'unknown field (expected name and beta)');
    const name = readString(inner, 'name');
    const beta = readBoolean(inner, 'beta', false);
    if (name === undefined || beta === undefined) ok = false;
    else out.push({ name, beta });
  });
  return ok ? out : undefined;
}

function readUserTypes(src: FieldSource): ('personal' | 'business')[] | undefined {
  const v = src.get('userTypes');
  if (v === undefined) return ['personal'];
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string' && (USER_TYPES as readonly string[]).includes(x))) {
    src.problem('userTypes', `must be a non-empty list of ${USER_TYPES.join(' and/or ')} (got ${JSON.stringify(v)})`);
    return undefined;
  }
  return [...new Set(v as ('personal' | 'business')[])];
}

function readConsentDays(src: FieldSource): number | null | undefined {
  const v = src.get('consentDays');
  if (v === undefined) return CONSENT_DAYS;
  if (v === null) return null;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_CONSENT_DAYS) return v;
  src.problem('consentDays', `must be a whole number of days from 1 to ${MAX_CONSENT_DAYS}, or null when the provider sets no expiry (got ${JSON.stringify(v)})`);
  return undefined;
}

/**
 * The provider's cadence (SPEC section 5), when the entry sets it: `unattendedSyncsPerDay` (per rolling
 * 24 hours per connection; never more than the limit of 4 of UK Open Banking and PSD2) and
 * `staleAfterHours`. Absent: the provider type's (syncs/cadence.ts, connections/status.ts).
 */
function readCadence(src: FieldSource, type: ProviderType | undefined): { unattendedSyncsPerDay?: number; staleAfterHours?: number } | undefined {
  const perDay = src.get('unattendedSyncsPerDay');
  const stale = src.get('staleAfterHours');
  const isWhole = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max;
  // Every file adapter reaches accounts under PSD2 account-information rules (openbanking: UK Open Banking;
  // enablebanking, gocardless: PSD2 banks), which allow 4 accesses a day without the user present.
  const max = UNATTENDED_SYNCS_PER_DAY_OPEN_BANKING;
  if (perDay === REPORTED || stale === REPORTED) return undefined;
  let ok = true;
  if (perDay !== undefined && !isWhole(perDay, max)) {
    src.problem('unattendedSyncsPerDay', `must be a whole number from 1 to ${max} (UK Open Banking and PSD2 account information allow ${max} unattended accesses a day) (got ${JSON.stringify(perDay)})`);
    ok = false;
  }
  if (stale !== undefined && !isWhole(stale, MAX_STALE_AFTER_HOURS)) {
    src.problem('staleAfterHours', `must be a whole number of hours from 1 to ${MAX_STALE_AFTER_HOURS} (got ${JSON.stringify(stale)})`);
    ok = false;
  }
  if (!ok) return undefined;
  if (type !== undefined && (perDay !== undefined || stale !== undefined)) {
    // A window no longer than the gap between scheduled syncs would show healthy connections stale between them.
    const gapHours = longestScheduledGapMs({ type, ...(perDay !== undefined ? { unattendedSyncsPerDay: perDay as number } : {}) }) / HOUR_MS;
    const staleHours = stale === undefined ? STALE_AFTER_HOURS[type] : (stale as number);
    if (staleHours <= gapHours) {
      src.problem(stale !== undefined ? 'staleAfterHours' : 'unattendedSyncsPerDay',
        `staleAfterHours (${staleHours}) must be longer than the ${+gapHours.toFixed(2)} h that can pass between scheduled syncs, or connections would read stale between them`);
      return undefined;
    }
  }
  return { ...(perDay !== undefined ? { unattendedSyncsPerDay: perDay as number } : {}), ...(stale !== undefined ? { staleAfterHours: stale as number } : {}) };
}

function readId(src: FieldSource, name: string | undefined): string | undefined {
  const v = src.get('id');
  if (v === undefined) return name === undefined ? undefined : providerIdFromName(name);
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{32}$/.test(v)) {
    src.problem('id', `must be a string of 32 hexadecimal digits${typeof v === 'number' ? ' (quote it: YAML read it as a number)' : ''} (got ${JSON.stringify(v)})`);
    return undefined;
  }
  return v.toLowerCase();
}

function readSettings(adapter: FileAdapterKind, src: FieldSource, own: Json, defaults: Json, ctx: EntryContext): Pick<CatalogEntry, 'openbanking' | 'enablebanking' | 'gocardless'> | undefined {
  const settings = settingsSource(adapter, own, defaults, ctx);
  if (adapter === 'openbanking') {
    const s = readOpenBankingSettings(settings);
    return s === null ? undefined : { openbanking: s };
  }
  if (adapter === 'enablebanking') {
    const s = readEnableBankingSettings(settings);
    return s === null ? undefined : { enablebanking: s };
  }
  const s = readGoCardlessSettings(settings);
  return s === null ? undefined : { gocardless: s };
}

function baseUrlOf(s: Pick<CatalogEntry, 'openbanking' | 'enablebanking' | 'gocardless'>): string {
  return s.openbanking?.resourceBaseUrl ?? s.enablebanking?.apiUrl ?? s.gocardless?.apiUrl ?? '';
}

/** One entry into a catalog entry, or null when it has a problem (each recorded through ctx). */
function readEntry(raw: unknown, ctx: EntryContext): CatalogEntry | null {
  if (!isObject(raw)) {
    ctx.problem('', `must be an object with name, type, adapter and settings (got ${Array.isArray(raw) ? 'a list' : JSON.stringify(raw)})`);
    return null;
  }
  for (const field of Object.keys(raw).filter((f) => !ENTRY_FIELDS.includes(f))) ctx.problem(field, `unknown field (a provider has ${ENTRY_FIELDS.join(', ')})`);
  const src = entrySource(raw, ctx);
  const name = readString(src, 'name');
  const id = readId(src, name);
  const type = readOneOf(src, 'type', PROVIDER_TYPES);
  const adapter = readOneOf(src, 'adapter', FILE_ADAPTER_KINDS);
  if (adapter !== undefined && !(IMPLEMENTED_ADAPTER_KINDS as readonly string[]).includes(adapter)) {
    src.problem('adapter', `adapter ${adapter} is not available in this version`);
  }
  const consentDays = readConsentDays(src);
  const cadence = readCadence(src, type);
  const tppConsent = readBoolean(src, 'tppConsent', false);
  const accountTypes = readAccountTypes(src);
  const iconUrl = src.get('iconUrl') === undefined ? null : readHttpUrl(src, 'iconUrl');
  const isBeta = readBoolean(src, 'isBeta', false);
  const userTypes = readUserTypes(src);
  const ownSettings = raw.settings === undefined ? {} : raw.settings;
  const defaultSettings = isObject(ctx.defaults.settings) ? ctx.defaults.settings : {};
  let settings: Pick<CatalogEntry, 'openbanking' | 'enablebanking' | 'gocardless'> | undefined;
  if (!isObject(ownSettings)) {
    ctx.problem('settings', 'must be an object of the adapter\'s settings');
  } else if (adapter !== undefined) {
    settings = readSettings(adapter, src, ownSettings, defaultSettings, ctx);
  }
  if (name === undefined || id === undefined || type === undefined || adapter === undefined || !(IMPLEMENTED_ADAPTER_KINDS as readonly string[]).includes(adapter)
    || consentDays === undefined || tppConsent === undefined || accountTypes === undefined || iconUrl === undefined || isBeta === undefined
    || userTypes === undefined || settings === undefined || cadence === undefined) {
    return null;
  }
  return {
    id, name, type, adapter, bankRef: id, consentDays, tppConsent, isBeta, accountTypes, userTypes, payments: [],
    baseUrl: baseUrlOf(settings), origin: 'file', ...(iconUrl !== null ? { iconUrl } : {}), ...cadence, ...settings,
  };
}

function checkDefaults(defaults: Json, problem: (message: string) => void): void {
  for (const field of Object.keys(defaults)) {
    if (OWN_FIELDS.includes(field)) problem(`defaults.${field}: cannot be a default (each provider sets its own)`);
    else if (!ENTRY_FIELDS.includes(field)) problem(`defaults.${field}: unknown field (defaults may set ${ENTRY_FIELDS.filter((f) => !OWN_FIELDS.includes(f)).join(', ')})`);
  }
  const settings = defaults.settings;
  if (settings === undefined) return;
  if (!isObject(settings)) {
    problem('defaults.settings: must be an object of settings');
    return;
  }
  const anyAdapter = new Set<string>(Object.values(SETTINGS_FIELDS).flat());
  for (const field of Object.keys(settings).filter((f) => !anyAdapter.has(f))) problem(`defaults.settings.${field}: unknown field (no adapter has it)`);
}

/** Reads and checks the providers file; never throws (an unreadable file is a problem too). */
export function loadProvidersFile(fileName: string, opts: ProvidersFileOptions): ProvidersFile {
  const file = path.resolve(fileName);
  const problems: string[] = [];
  const fileProblem = (message: string): void => {
    problems.push(`providers file ${file}: ${message}`);
  };
  const result = (entries: CatalogEntry[], listed = 0): ProvidersFile => ({ file, entries, problems, listed });
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    fileProblem(`cannot read it (${errorCode(err)})`);
    return result([]);
  }
  const parsed = parseFile(file, text);
  if (!parsed.ok) {
    fileProblem(parsed.problem);
    return result([]);
  }
  const doc = parsed.value;
  if (!isObject(doc) || !Array.isArray(doc.providers)) {
    fileProblem('must hold { "providers": [ … ] } (a list of providers, optionally with "defaults")');
    return result([]);
  }
  for (const key of Object.keys(doc).filter((k) => k !== 'providers' && k !== 'defaults')) fileProblem(`${key}: unknown field (the file has providers and defaults)`);
  let defaults: Json = {};
  if (doc.defaults !== undefined) {
    if (isObject(doc.defaults)) {
      defaults = doc.defaults;
      checkDefaults(defaults, fileProblem);
    } else {
      fileProblem('defaults: must be an object of fields every provider gets unless it sets its own');
    }
  }
  const usable = Object.fromEntries(Object.entries(defaults).filter(([k]) => !OWN_FIELDS.includes(k)));

  const entries: CatalogEntry[] = [];
  const byName = new Map<string, number>();
  const byId = new Map<string, { index: number; name: string }>();
  const dir = path.dirname(file);
  const read: { index: number; rawName: string | null; entry: CatalogEntry | null; problem: (field: string, message: string) => void }[] = [];
  doc.providers.forEach((raw: unknown, index) => {
    const rawName = isObject(raw) && typeof raw.name === 'string' && raw.name.trim() !== '' ? raw.name : null;
    const label = rawName === null ? `entry ${index + 1}` : `provider ${JSON.stringify(rawName)} (entry ${index + 1})`;
    const problem = (field: string, message: string): void => fileProblem(`${label}: ${field === '' ? '' : `${field}: `}${message}`);
    const entry = readEntry(raw, { dir, env: opts.env, defaults: usable, problem });
    read.push({ index, rawName, entry, problem });
    if (rawName !== null) {
      const key = rawName.trim().toLowerCase();
      const earlier = byName.get(key);
      if (earlier !== undefined) problem('name', `is also the name of entry ${earlier + 1}; names must be unique`);
      else byName.set(key, index);
    }
    if (entry === null) return;
    const sameId = byId.get(entry.id);
    if (sameId !== undefined && sameId.name.trim().toLowerCase() !== entry.name.trim().toLowerCase()) {
      problem('id', `${entry.id} is also the id of provider ${JSON.stringify(sameId.name)} (entry ${sameId.index + 1}); ids must be unique`);
    }
    if (sameId === undefined) byId.set(entry.id, { index, name: entry.name });
    entries.push(entry);
  });
  // Only now is it known whether sandbox mode is on (by default it is when the file lists no provider).
  const reserved = opts.reserved?.(doc.providers.length) ?? [];
  for (const { rawName, entry, problem } of read) {
    if (rawName !== null && reserved.some((r) => r.name.trim().toLowerCase() === rawName.trim().toLowerCase())) {
      problem('name', 'is the name of a sandbox provider (MOORING_SANDBOX is on); choose another name');
    }
    const sandbox = entry === null ? undefined : reserved.find((r) => r.id === entry.id);
    if (sandbox !== undefined && entry !== null) problem('id', `${entry.id} is the id of the sandbox provider ${JSON.stringify(sandbox.name)} (MOORING_SANDBOX is on); choose another id`);
  }
  return result(entries, doc.providers.length);
}
