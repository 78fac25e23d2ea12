/** Schemas and helpers shared by every route: the error body, list envelopes and pagination. */
import { Type, type Static, type TSchema } from 'typebox';

export const ErrorBody = Type.Object(
  {
    code: Type.String({ description: 'Stable snake_case error code' }),
    message: Type.String({ description: 'Human-readable explanation' }),
    details: Type.Optional(Type.Unknown()),
  },
  { $id: 'ErrorBody', description: 'Error' },
);

/** The error responses every authenticated route may give. */
export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
} as const;

export const Pagination = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
});
export type PaginationQuery = Static<typeof Pagination>;

export const Links = Type.Object({
  self: Type.String(),
  next: Type.Optional(Type.String()),
  prev: Type.Optional(Type.String()),
});

export const listOf = <T extends TSchema>(item: T) =>
  Type.Object({
    data: Type.Array(item),
    links: Links,
    meta: Type.Object({ total: Type.Optional(Type.Integer()) }, { additionalProperties: true }),
  });

export const dataOf = <T extends TSchema>(item: T) => Type.Object({ data: item });

export const DateTime = Type.String({ format: 'date-time' });
export const NullableDateTime = Type.Union([DateTime, Type.Null()]);

export interface Page {
  limit: number;
  offset: number;
}

export const pageOf = (q: PaginationQuery): Page => ({ limit: q.limit ?? 100, offset: q.offset ?? 0 });

/** Builds `links` for a page: self, and next/prev where they exist. */
export function pageLinks(baseUrl: string, path: string, page: Page, total: number, extra: Record<string, string> = {}) {
  const url = (offset: number): string => {
    const qs = new URLSearchParams({ ...extra, limit: String(page.limit), offset: String(offset) });
    return `${baseUrl}${path}?${qs.toString()}`;
  };
  return {
    self: url(page.offset),
    ...(page.offset + page.limit < total ? { next: url(page.offset + page.limit) } : {}),
    ...(page.offset > 0 ? { prev: url(Math.max(0, page.offset - page.limit)) } : {}),
  };
}

export const iso = (d: Date): string => d.toISOString();
export const isoOrNull = (d: Date | null): string | null => (d === null ? null : d.toISOString());

/** A schema for one of a const list of string values (each list of states is written once, as a const union). */
export const literals = <const T extends readonly string[]>(values: T) => Type.Enum(values);
