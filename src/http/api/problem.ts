// Errors of the server API as RFC 9457 problem details (application/problem+json), each with the
// stable `code` of src/domain/error-codes.ts. Client errors show their message; a 5xx answer
// says only that something failed (the real error goes to the request's log, under its id).
import { STATUS_CODES } from 'node:http';
import { type Context, type Middleware } from 'koa';
import { AppError, isAppError } from '../../domain/errors.ts';
import { type ProblemBody } from './resources.ts';

export const PROBLEM_TYPE = 'application/problem+json';

interface HttpLikeError {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  message?: string;
}

/** The problem type URI of a code. */
export const problemType = (publicUrl: string, code: string): string => `${publicUrl}/api/v1/problems/${code}`;

/** The problem body of an error, and its status. */
export function toProblem(err: unknown, ctx: Pick<Context, 'path' | 'state'>, publicUrl: string): ProblemBody {
  let status = 500;
  let code = 'INTERNAL';
  let detail = 'The request could not be completed; try again later.';
  let errors: Array<{ field: string; message: string }> | undefined;
  let declineCode: string | undefined;
  if (isAppError(err)) {
    status = err.httpStatus;
    if (err.expose && status < 500) {
      code = err.code;
      detail = err.message;
      const problems = (err.details as { problems?: Array<{ field: string; message: string }> } | undefined)?.problems;
      if (Array.isArray(problems)) errors = problems.map((p) => ({ field: p.field, message: p.message }));
      // A declined saved-card charge (PAYMENT_DECLINED) says why.
      const declined = (err.details as { declineCode?: unknown } | undefined)?.declineCode;
      if (typeof declined === 'string') declineCode = declined;
    } else if (status < 500) code = err.code;
    else status = 500;
  } else if (err && typeof err === 'object') {
    const e = err as HttpLikeError;
    const s = e.status ?? e.statusCode;
    if (typeof s === 'number' && s >= 400 && s < 500) {
      status = s;
      code = 'HTTP_ERROR';
      detail = e.expose !== false && e.message ? e.message : STATUS_CODES[s] ?? 'Error';
    }
  }
  return {
    type: problemType(publicUrl, code),
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    instance: ctx.path,
    code,
    ...(ctx.state.requestId ? { requestId: String(ctx.state.requestId) } : {}),
    ...(errors ? { errors } : {}),
    ...(declineCode ? { declineCode } : {}),
  };
}

/** Writes a problem answer (any headers the failed handler set, e.g. Location, are dropped). */
export function sendProblem(ctx: Context, problem: ProblemBody, err?: unknown): void {
  ctx.remove('Location');
  ctx.status = problem.status;
  ctx.set('Cache-Control', 'no-store');
  if (problem.code === 'API_KEY_INVALID') ctx.set('WWW-Authenticate', 'Bearer realm="paymail", error="invalid_token"');
  const retryAfter = isAppError(err) ? (err.details as { retryAfterSec?: number } | undefined)?.retryAfterSec : undefined;
  if (retryAfter !== undefined) ctx.set('Retry-After', String(retryAfter));
  if (isAppError(err) && err.code === 'API_METHOD_NOT_ALLOWED') {
    const allow = (err.details as { allow?: string[] } | undefined)?.allow;
    if (allow) ctx.set('Allow', allow.join(', '));
  }
  ctx.body = JSON.stringify(problem);
  ctx.type = PROBLEM_TYPE;
}

/** The API's error mapper: every error below it becomes a problem answer. */
export function problemMiddleware(publicUrl: string): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const problem = toProblem(err, ctx, publicUrl);
      if (problem.status >= 500) ctx.state.log?.error({ err }, 'api request failed');
      else ctx.state.log?.info({ status: problem.status, code: problem.code }, 'api request refused');
      sendProblem(ctx, problem, err);
    }
  };
}

/** A problem with one or more fields of a request (422, every problem listed). */
export const validationFailed = (problems: Array<{ field: string; message: string }>): AppError =>
  new AppError('VALIDATION_FAILED', problems.map((p) => `${p.field}: ${p.message}`).join('; '), { httpStatus: 422, details: { problems } });
