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

export function registerErrorHandling(app: FastifyInstance): void {
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
        details: issues,
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
