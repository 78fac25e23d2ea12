/**
 * The JSON body parser for the whole app: bounded nesting (deeply nested JSON under the size limit
 * must not exhaust the stack of whatever walks it later), an empty body read as no body, and any
 * charset other than UTF-8 refused with 415 rather than decoded wrongly.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';

/** Deeper than any body Mooring accepts needs; far below what recursive code can walk. */
export const MAX_JSON_DEPTH = 64;

/** The deepest nesting of arrays and objects in JSON text (strings skipped); stops counting past `limit`. */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return max;
}

/** Parses a JSON body: `undefined` for an empty one, AppError 400 for bad or too deeply nested JSON. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new AppError(400, 'invalid_json', `The request body nests objects or arrays more than ${MAX_JSON_DEPTH} levels deep`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AppError(400, 'invalid_json', 'The request body is not valid JSON');
  }
  if (typeof value === 'object' && value !== null && hasProtoKey(text)) stripProto(value);
  return value;
}

const hasProtoKey = (text: string): boolean => text.includes('__proto__') || text.includes('constructor');

/** Prototype-poisoning keys are dropped (as Fastify's default parser does), iteratively. */
function stripProto(root: object): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    const o = v as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(o, '__proto__')) Reflect.deleteProperty(o, '__proto__');
    const ctor = Object.prototype.hasOwnProperty.call(o, 'constructor') ? o.constructor : undefined;
    if (typeof ctor === 'object' && ctor !== null && Object.prototype.hasOwnProperty.call(ctor, 'prototype')) Reflect.deleteProperty(o, 'constructor');
    for (const child of Object.values(o)) stack.push(child);
  }
}

/** The charset parameter of a Content-Type header, lower-cased, or null when there is none. */
export function charsetOf(contentType: string | undefined): string | null {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '');
  return m?.[1]?.toLowerCase() ?? null;
}

function refuseForeignCharset(req: FastifyRequest): void {
  const charset = charsetOf(req.headers['content-type']);
  if (charset !== null && charset !== 'utf-8' && charset !== 'utf8' && charset !== 'us-ascii') {
    throw new AppError(415, 'unsupported_media_type', `Send the body in UTF-8 (charset=${charset} is not accepted)`, { details: { field: 'content-type', problem: 'charset must be utf-8' } });
  }
}

export function registerBodyParsing(app: FastifyInstance, bodyLimitBytes: number): void {
  app.addHook('onRequest', async (req) => refuseForeignCharset(req));
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: bodyLimitBytes }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}
