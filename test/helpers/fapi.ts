/**
 * A sandbox FAPI bank configured as an operator would configure a real bank in the providers file:
 * its own name and id, Mooring's sandbox client certificate and signing key, and the response type
 * and client authentication the test asks for. It exercises exactly the path a real bank does.
 */
import { createHash } from 'node:crypto';
import { sandboxCatalog, type CatalogEntry } from '../../src/providers/catalog.ts';
import type { OpenBankingSettings } from '../../src/providers/settings.ts';
import { sandboxOpenBankingSettings } from '../../src/sandbox/banks/index.ts';
import { testPki } from './pki.ts';

export interface ConfiguredBankOptions {
  name: string;
  /** The sandbox bank behind it (default nationwide). */
  slug?: string;
  settings?: Partial<OpenBankingSettings>;
}

export function configuredSandboxBank(urls: { publicUrl: string; mtlsUrl: string }, opts: ConfiguredBankOptions): CatalogEntry {
  const slug = opts.slug ?? 'nationwide';
  const base = sandboxCatalog(urls.publicUrl).find((e) => e.bankRef === slug);
  if (base === undefined) throw new Error(`no sandbox bank ${slug}`);
  const id = createHash('sha256').update(`test-configured:${opts.name}`).digest('hex').slice(0, 32);
  const openbanking = { ...sandboxOpenBankingSettings(testPki(), urls, slug), ...opts.settings };
  return { ...base, id, name: opts.name, bankRef: id, origin: 'file', baseUrl: openbanking.resourceBaseUrl, openbanking };
}
