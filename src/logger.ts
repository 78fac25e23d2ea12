/** The process logger. Secrets never reach it: credentials, tokens and query strings are left out. */
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config.ts';

export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', '*.client_secret', '*.password', '*.access_token', '*.refresh_token'],
      censor: '[redacted]',
    },
    serializers: {
      // Query strings can carry authorisation codes and state; log the path only.
      req: (req: { method?: string; url?: string; id?: string }) => ({ method: req.method, path: (req.url ?? '').split('?')[0], id: req.id }),
    },
  });
}
