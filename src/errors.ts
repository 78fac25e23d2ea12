/**
 * One error model. An AppError carries the HTTP status, a stable snake_case code, a message that is
 * safe to show, optional details for the client, and a private detail that is only logged.
 */
export class AppError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly details: unknown;
  readonly privateDetail: string | undefined;
  readonly headers: Record<string, string>;

  constructor(
    statusCode: number,
    code: string,
    message: string,
    opts: { details?: unknown; privateDetail?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
    this.details = opts.details;
    this.privateDetail = opts.privateDetail;
    this.headers = opts.headers ?? {};
  }
}

export const badRequest = (code: string, message: string, details?: unknown): AppError =>
  new AppError(400, code, message, { details });

export const notFound = (what: string): AppError =>
  new AppError(404, 'not_found', `${what} not found`);

export const unauthorized = (message = 'A valid bearer token is required'): AppError =>
  new AppError(401, 'unauthorized', message, { headers: { 'www-authenticate': 'Bearer' } });

export const forbidden = (message: string, details?: unknown): AppError =>
  new AppError(403, 'insufficient_scope', message, { details });

export const conflict = (code: string, message: string, details?: unknown): AppError =>
  new AppError(409, code, message, { details });
