// multipart/form-data for the one form that uploads a file (the merchant's logo), parsed with
// busboy within tight limits: one file of at most `maxFileBytes` (a bigger one is cut and marked
// `truncated`, so the route can name the problem), a few short fields, nothing written to disk.
// Any other body (an url-encoded form without a file) is left to the form body parser.
import busboy from 'busboy';
import { type Middleware } from 'koa';
import { AppError } from '../../domain/errors.ts';

export interface Upload {
  field: string;
  bytes: Buffer;
  /** The file was larger than the limit: `bytes` holds only its start. */
  truncated: boolean;
}

export function multipartForm(opts: { maxFileBytes: number; maxFields?: number; maxFieldBytes?: number }): Middleware {
  return async (ctx, next) => {
    if (!ctx.is('multipart/form-data')) return next();
    const fields: Record<string, string> = {};
    let upload: Upload | undefined;
    await new Promise<void>((resolve, reject) => {
      let parser: busboy.Busboy;
      try {
        parser = busboy({
          headers: ctx.req.headers,
          limits: { files: 1, fileSize: opts.maxFileBytes, fields: opts.maxFields ?? 10, fieldSize: opts.maxFieldBytes ?? 1024, parts: (opts.maxFields ?? 10) + 1 },
        });
      } catch (e) {
        return reject(new AppError('BRANDING_UPLOAD_INVALID', `the form cannot be read: ${(e as Error).message}`, { httpStatus: 400 }));
      }
      const fail = (why: string) => reject(new AppError('BRANDING_UPLOAD_INVALID', why, { httpStatus: 400 }));
      parser.on('field', (name, value, info) => {
        if (info.valueTruncated) return fail(`the field ${name} is too long`);
        fields[name] = value;
      });
      parser.on('file', (name, stream) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('limit', () => {
          upload = { field: name, bytes: Buffer.concat(chunks), truncated: true };
        });
        stream.on('close', () => {
          upload ??= { field: name, bytes: Buffer.concat(chunks), truncated: false };
        });
      });
      parser.on('filesLimit', () => fail('one file at most'));
      parser.on('fieldsLimit', () => fail('too many fields'));
      parser.on('partsLimit', () => fail('too many parts'));
      parser.on('error', (e: Error) => fail(`the form cannot be read: ${e.message}`));
      parser.on('close', () => resolve());
      ctx.req.pipe(parser);
    });
    ctx.request.body = fields;
    ctx.state.upload = upload;
    await next();
  };
}
