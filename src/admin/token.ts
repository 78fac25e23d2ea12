/**
 * The operator's secret. From MOORING_ADMIN_TOKEN, or generated on first start and kept in the
 * data directory (readable by the owner only).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const adminTokenPath = (dataDir: string): string => path.join(dataDir, 'admin-token');

export function resolveAdminToken(configured: string | null, dataDir: string): { token: string; source: 'env' | 'file' | 'generated' } {
  if (configured !== null) return { token: configured, source: 'env' };
  const file = adminTokenPath(dataDir);
  if (fs.existsSync(file)) return { token: fs.readFileSync(file, 'utf8').trim(), source: 'file' };
  fs.mkdirSync(dataDir, { recursive: true });
  const token = `mra_${randomBytes(24).toString('base64url')}`;
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, source: 'generated' };
}
