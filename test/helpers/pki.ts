/**
 * The one sandbox PKI every test shares: generated once (with openssl) into TEST_DATA_DIR, the data
 * directory of every test server; a child process with a data directory of its own (its embedded
 * database lives there) gets a copy of it, so it never generates one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadSandboxPki, type SandboxPki } from '../../src/sandbox/pki.ts';

export const TEST_DATA_DIR = path.join(os.tmpdir(), 'mooring-test-data');

/** The tests' sandbox PKI (the test servers listen on loopback addresses, which it always covers). */
export function testPki(): SandboxPki {
  return loadSandboxPki(TEST_DATA_DIR, []);
}

/** Puts a copy of the tests' sandbox PKI into `dataDir` (a child process's own data directory). */
export function provideTestPki(dataDir: string): void {
  testPki();
  const target = path.join(dataDir, 'sandbox-pki');
  if (fs.existsSync(target)) return;
  fs.mkdirSync(dataDir, { recursive: true });
  fs.cpSync(path.join(TEST_DATA_DIR, 'sandbox-pki'), target, { recursive: true });
}
