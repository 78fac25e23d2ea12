/**
 * Request validation. Query strings and path parameters are text, so they are coerced to the
 * schema's types; JSON bodies are not: a number where a string belongs is a 400, not a silent fix.
 * Unknown body fields are rejected where a schema says additionalProperties: false.
 */
import { Ajv, type Options, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function makeAjv(opts: Options): Ajv {
  const ajv = new Ajv({ allErrors: false, useDefaults: true, removeAdditional: false, strict: false, ...opts });
  addFormats(ajv);
  return ajv;
}

const DECIMAL = { integer: /^-?\d+$/, number: /^-?\d+(?:\.\d+)?$/ } as const;

/** Query and path properties whose schema is a number: their text must be plain decimal digits (not 0x10, 1e3, " 7"). */
function numericKeys(schema: unknown): Map<string, RegExp> {
  const keys = new Map<string, RegExp>();
  const props = (schema as { properties?: Record<string, { type?: unknown }> } | null)?.properties ?? {};
  for (const [k, v] of Object.entries(props)) {
    if (v.type === 'integer') keys.set(k, DECIMAL.integer);
    else if (v.type === 'number') keys.set(k, DECIMAL.number);
  }
  return keys;
}

type Validate = ((data: unknown) => boolean) & { errors?: ValidateFunction['errors'] };

export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const coercing = makeAjv({ coerceTypes: 'array' });
  const strict = makeAjv({ coerceTypes: false });
  return ({ schema, httpPart }) => {
    if (httpPart === 'body') return strict.compile(schema as object);
    const validate = coercing.compile(schema as object);
    const numeric = numericKeys(schema);
    if (numeric.size === 0) return validate;
    const checked: Validate = (data) => {
      if (typeof data === 'object' && data !== null) {
        const d = data as Record<string, unknown>;
        for (const [k, pattern] of numeric) {
          // Left as a non-coercible value, the schema check then refuses it as "must be integer".
          if (typeof d[k] === 'string' && !pattern.test(d[k])) d[k] = {};
        }
      }
      const ok = validate(data);
      checked.errors = validate.errors;
      return ok;
    };
    return checked;
  };
}
