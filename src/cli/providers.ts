/**
 * `mooring providers …`: operator commands on the providers file, none of which needs a database or
 * a running server.
 * - `check [file]` reads the file (default MOORING_PROVIDERS_FILE) exactly as start-up does and lists
 *   its providers and every problem;
 * - `probe <name>` reaches one provider (Open Banking: discovery, keys, a token over mutual TLS, the
 *   API; Enable Banking: the application JWT, the application, the bank; GoCardless: a token pair
 *   and the institution with its limits) and says what works and what to fix;
 * - `register <name> --ssa <file>` registers Mooring with an Open Banking bank (dynamic client
 *   registration) and prints the client id to put in the file.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { checkProvidersFile } from '../config.ts';
import type { CatalogEntry } from '../providers/catalog.ts';
import { probeEnableBanking } from '../providers/enablebanking/probe.ts';
import { probeOpenBanking } from '../providers/openbanking/probe.ts';
import { probeGoCardless } from '../providers/gocardless/probe.ts';
import { registerWithBank } from '../providers/openbanking/registration.ts';
import { DEFAULT_TIMERS } from '../timers.ts';
import type { CommandOutput } from './keys.ts';

export const PROVIDERS_USAGE = `Usage: mooring providers <check|probe|register> …

  providers check [FILE]
      Checks a providers file (default: MOORING_PROVIDERS_FILE) as start-up would: its JSON or YAML, every
      entry's fields and settings, the secrets it references ({ "env": "VAR" } and { "file": "path" }),
      keys and certificates. Prints one line per provider and every problem; exits 0 when the file is good.
  providers probe NAME [--file FILE]
      Reaches the provider NAME of the file. Open Banking: the bank's discovery document and keys, a
      client-credentials token over mutual TLS, the account information API. Enable Banking: the
      application JWT, the application (active, PUBLIC_URL/connect/callback whitelisted), the bank and its
      maximum consent validity. Says what works and, for what does not, what to do; exits 0 when every
      step works.
  providers register NAME --ssa SSA_FILE [--file FILE] [--aud AUDIENCE]
      Open Banking dynamic client registration: signs a registration request carrying the software
      statement (SSA_FILE, from the Open Banking directory) with the provider's signing key and sends it
      over mutual TLS; the redirect URI is PUBLIC_URL/connect/callback. Prints the clientId to put in the
      file. AUDIENCE defaults to the bank's issuer (some banks want their organisation id).`;

const CONSOLE: CommandOutput = { log: (line) => console.log(line), error: (line) => console.error(line) };

/** The provider NAME of the providers file, or undefined after saying why not. */
function providerNamed(name: string, file: string | undefined, out: CommandOutput, kinds: readonly string[]): CatalogEntry | undefined {
  const { providers, problems } = checkProvidersFile(file);
  if (problems.length > 0 || providers === null) {
    out.error(`mooring providers: the providers file has problems; run \`mooring providers check\` first:`);
    for (const problem of problems) out.error(`  - ${problem}`);
    return undefined;
  }
  const entry = providers.entries.find((p) => p.name.toLowerCase() === name.toLowerCase());
  if (entry === undefined) {
    out.error(`mooring providers: no provider named "${name}" in ${providers.file} (it lists: ${providers.entries.map((p) => p.name).join(', ') || 'none'})`);
    return undefined;
  }
  if (!kinds.includes(entry.adapter)) {
    out.error(`mooring providers: "${entry.name}" uses the ${entry.adapter} adapter; this command knows ${kinds.join(' and ')} providers`);
    return undefined;
  }
  return entry;
}

async function probe(args: string[], out: CommandOutput, publicUrl: string): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { file: { type: 'string' } }, allowPositionals: true, strict: true });
  const [name, ...extra] = positionals;
  if (name === undefined || extra.length > 0) {
    out.error(`mooring providers probe: name one provider\n\n${PROVIDERS_USAGE}`);
    return 2;
  }
  const entry = providerNamed(name, values.file, out, ['openbanking', 'enablebanking', 'gocardless']);
  if (entry === undefined) return 1;
  out.log(`mooring: probing ${entry.name} (${entry.adapter}) …`);
  const timeoutMs = DEFAULT_TIMERS.providerTimeoutMs;
  const steps = entry.adapter === 'gocardless'
    ? await probeGoCardless(entry, { timeoutMs })
    : entry.adapter === 'enablebanking'
      ? await probeEnableBanking(entry, { timeoutMs, publicUrl })
      : await probeOpenBanking(entry, { timeoutMs });
  for (const s of steps) {
    out.log(`  ${s.ok ? 'ok  ' : 'FAIL'} ${s.step}: ${s.detail}`);
    if (!s.ok && s.hint !== undefined) out.log(`       → ${s.hint}`);
  }
  const failed = steps.filter((s) => !s.ok).length;
  if (failed > 0) {
    out.error(`mooring: ${failed} of ${steps.length} step(s) failed for ${entry.name}`);
    return 1;
  }
  out.log(`mooring: ${entry.name} is reachable; users can connect to it`);
  return 0;
}

async function register(args: string[], out: CommandOutput, publicUrl: string): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { file: { type: 'string' }, ssa: { type: 'string' }, aud: { type: 'string' } }, allowPositionals: true, strict: true });
  const [name, ...extra] = positionals;
  if (name === undefined || extra.length > 0 || values.ssa === undefined) {
    out.error(`mooring providers register: name one provider and give --ssa FILE\n\n${PROVIDERS_USAGE}`);
    return 2;
  }
  let ssa: string;
  try {
    ssa = fs.readFileSync(values.ssa, 'utf8');
  } catch (err) {
    out.error(`mooring providers register: cannot read ${values.ssa}: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  const entry = providerNamed(name, values.file, out, ['openbanking']);
  if (entry === undefined) return 1;
  const redirectUri = `${publicUrl.replace(/\/+$/, '')}/connect/callback`;
  out.log(`mooring: registering with ${entry.name} (redirect URI ${redirectUri}) …`);
  const result = await registerWithBank(entry, { ssa, redirectUri, timeoutMs: DEFAULT_TIMERS.providerTimeoutMs, ...(values.aud === undefined ? {} : { audience: values.aud }) });
  if (!result.ok || result.clientId === undefined) {
    out.error(`mooring: registration failed: ${result.detail}`);
    return 1;
  }
  out.log(`mooring: ${result.detail}`);
  out.log(`clientId: ${result.clientId}`);
  out.log(`Put it in the providers file: settings.clientId of "${entry.name}", then run \`mooring providers probe "${entry.name}"\`.`);
  return 0;
}

/** Answers the exit code: 0 good, 1 problems, 2 misuse. */
export async function providersCommand(args: string[], opts: { publicUrl: string }, out: CommandOutput = CONSOLE): Promise<number> {
  const [sub, ...subArgs] = args;
  try {
    if (sub === 'probe') return await probe(subArgs, out, opts.publicUrl);
    if (sub === 'register') return await register(subArgs, out, opts.publicUrl);
  } catch (err) {
    out.error(`mooring providers ${sub}: ${err instanceof Error ? err.message : String(err)}\n\n${PROVIDERS_USAGE}`);
    return 2;
  }
  return check(subArgs, sub, out);
}

function check(args: string[], sub: string | undefined, out: CommandOutput): number {
  const [file, ...rest] = args;
  if (sub !== 'check' || rest.length > 0 || (file !== undefined && file.startsWith('-'))) {
    out.error(`mooring providers: unknown or missing subcommand\n\n${PROVIDERS_USAGE}`);
    return 2;
  }
  const { providers, problems } = checkProvidersFile(file);
  if (providers !== null) {
    out.log(`mooring: providers file ${providers.file}`);
    for (const p of providers.entries) {
      out.log(`  ${p.name}: id ${p.id}, adapter ${p.adapter}, consentDays ${p.consentDays === null ? 'none' : p.consentDays}`);
    }
  }
  if (problems.length > 0) {
    out.error(`mooring providers check: ${problems.length} problem(s):`);
    for (const problem of problems) out.error(`  - ${problem}`);
    return 1;
  }
  out.log(`mooring: ${providers?.entries.length ?? 0} provider(s), no problems`);
  return 0;
}
