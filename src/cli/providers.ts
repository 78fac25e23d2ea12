/**
 * `mooring providers check [file]`: reads the providers file (default MOORING_PROVIDERS_FILE) exactly
 * as start-up does, without a database or a server, and lists its providers and every problem.
 */
import { checkProvidersFile } from '../config.ts';
import type { CommandOutput } from './keys.ts';

export const PROVIDERS_USAGE = `Usage: mooring providers check [FILE]

Checks a providers file (default: MOORING_PROVIDERS_FILE) as start-up would: its JSON or YAML, every
entry's fields and settings, the secrets it references ({ "env": "VAR" } and { "file": "path" }),
keys and certificates. Prints one line per provider and every problem; exits 0 when the file is good.`;

const CONSOLE: CommandOutput = { log: (line) => console.log(line), error: (line) => console.error(line) };

/** Answers the exit code: 0 good, 1 problems, 2 misuse. */
export function providersCommand(args: string[], out: CommandOutput = CONSOLE): number {
  const [sub, file, ...rest] = args;
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
