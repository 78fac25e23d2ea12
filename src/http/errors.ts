/** The one error handler: every failure becomes `{ code, message, details? }` with a fitting status. */
import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError } from '../errors.ts';

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

function fieldOf(context: string | undefined, issue: ValidationIssue): string {
  const path = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const missing = issue.params?.missingProperty;
  const extra = issue.params?.additionalProperty;
  const leaf = typeof missing === 'string' ? missing : typeof extra === 'string' ? extra : '';
  return [path, leaf].filter((s) => s !== '').join('.') || (context ?? 'request');
}

/** The path of the first string holding a NUL character (PostgreSQL cannot store it), if any. */
export function findNul(value: unknown, path = ''): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path || 'body' : null;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const hit = findNul(v, `${path}[${i}]`);
      if (hit !== null) return hit;
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      const hit = findNul(v, path === '' ? k : `${path}.${k}`);
      if (hit !== null) return hit;
    }
  }
  return null;
}

/** Fastify's own errors before routing (bad URL encoding, over-long path parameters), in our shape. */
export function frameworkErrors(err: FastifyError, _req: unknown, reply: import('fastify').FastifyReply): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void reply.code(404).send({ code: 'not_found', message: 'Not found' });
    return;
  }
  if (err.code === 'FST_ERR_BAD_URL') {
    void reply.code(400).send({ code: 'bad_url', message: 'The URL is not correctly encoded' });
    return;
  }
  void reply.code(err.statusCode ?? 400).send({ code: 'bad_request', message: err.message });
}

export function registerErrorHandling(app: FastifyInstance): void {
  // Text PostgreSQL cannot store is refused up front, naming where it is.
  app.addHook('preValidation', async (req) => {
    // (Path ids are checked by shape where they are looked up: one with NUL is simply not found.)
    const hit = findNul(req.body) ?? findNul(req.query, 'query');
    if (hit !== null) throw new AppError(400, 'invalid_request', `${hit} must not contain NUL characters`, { details: { field: hit, problem: 'contains a NUL character' } });
  });

  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    if (err instanceof AppError) {
      if (err.statusCode >= 500) req.log.error({ err, detail: err.privateDetail }, err.message);
      else if (err.privateDetail !== undefined) req.log.info({ code: err.code, detail: err.privateDetail }, err.message);
      return reply.code(err.statusCode).headers(err.headers).send({ code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) });
    }
    if (err.validation !== undefined) {
      const issues = (err.validation as ValidationIssue[]).map((i) => ({ field: fieldOf(err.validationContext, i), problem: i.message ?? 'is invalid' }));
      const first = issues[0];
      const where = err.validationContext ?? 'request';
      return reply.code(400).send({
        code: 'invalid_request',
        message: first === undefined ? `Invalid ${where}` : `Invalid ${where}: ${first.field} ${first.problem}`,
        details: { field: first?.field ?? where, problem: first?.problem ?? 'is invalid', issues },
      });
    }
    // PostgreSQL data exceptions (class 22: text it cannot store, a value out of range) come from input.
    const pgCode = (err as { code?: unknown }).code;
    if (typeof pgCode === 'string' && /^22[0-9A-Z]{3}$/.test(pgCode)) {
      req.log.info({ pgCode }, 'input rejected by the database');
      return reply.code(400).send({ code: 'invalid_request', message: 'The request contains a value Mooring cannot accept' });
    }
    const status = err.statusCode ?? 500;
    if (status === 413) return reply.code(413).send({ code: 'payload_too_large', message: 'The request body is too large' });
    if (status === 415) return reply.code(415).send({ code: 'unsupported_media_type', message: 'Send the body as application/json' });
    if (status >= 400 && status < 500) {
      const code = err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError ? 'invalid_json' : 'bad_request';
      const message = code === 'invalid_json' ? 'The request body is not valid JSON' : err.message;
      return reply.code(status).send({ code, message });
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send({ code: 'internal_error', message: 'Mooring hit an internal error; it has been logged' });
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ code: 'not_found', message: `No route for ${req.method} ${req.url.split('?')[0] ?? ''}` }),
  );
}
