// One error type for the whole service: a stable string `code` that tests and edges rely on,
// plus optional protocol mappings. Each edge (SMTP hook, HTTP route) maps it once; the defaults
// of a code come from the registry (src/domain/error-codes.ts).
import { errorCodeSpec } from './error-codes.ts';

export interface AppErrorOptions {
  httpStatus?: number;
  smtpCode?: number;
  /** Safe to show to the client (Koa's `expose`). Defaults to true for 4xx. */
  expose?: boolean;
  details?: unknown;
  cause?: unknown;
}

export class AppError extends Error {
  override name = 'AppError';
  readonly code: string;
  readonly httpStatus: number;
  readonly smtpCode: number | undefined;
  readonly expose: boolean;
  readonly details: unknown;

  constructor(code: string, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    const spec = errorCodeSpec(code);
    this.httpStatus = options.httpStatus ?? spec?.httpStatus ?? 500;
    this.smtpCode = options.smtpCode ?? spec?.smtp?.code;
    this.expose = options.expose ?? this.httpStatus < 500;
    this.details = options.details;
  }
}

export function isAppError(err: unknown, code?: string): err is AppError {
  return err instanceof AppError && (code === undefined || err.code === code);
}

/** A problem with one field of some input: what was given and what was expected. */
export interface FieldProblem {
  field: string;
  code: string;
  message: string;
  value?: string;
  line?: number;
  row?: number;
}
