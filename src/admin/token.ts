/**
 * The operator's secret. From MOORING_ADMIN_TOKEN, or generated on first start and kept in the
 * data directory (readable by the owner only).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { adminTokenProblem } from '../config.ts';

export const adminTokenPath = (dataDir: string): string => path.join(dataDir, 'admin-token');

export function resolveAdminToken(configured: string | null, dataDir: string): { token: string; source: 'env' | 'file' | 'generated' } {
  if (configured !== null) return { token: configured, source: 'env' };
  const file = adminTokenPath(dataDir);
  if (fs.existsSync(file)) {
    const stored = fs.readFileSync(file, 'utf8').trim();
    const problem = adminTokenProblem(stored);
    if (problem !== null) throw new Error(`the admin token in ${file} ${problem}; put a good one there (or delete the file to have one generated)`);
    return { token: stored, source: 'file' };
  }
  fs.mkdirSync(dataDir, { recursive: true });
  // 192 random bits; drawn again in the (vanishingly rare) case it has too few distinct characters.
  const draw = (): string => `mra_${randomBytes(24).toString('base64url')}`;
  let token = draw();
  while (adminTokenProblem(token) !== null) token = draw();
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, source: 'generated' };
}
