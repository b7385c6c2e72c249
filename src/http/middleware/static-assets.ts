// Serves the few static files under public/ at /assets/<name>. They are read once at start-up into
// memory, so no request path ever reaches the file system (no traversal to worry about).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { type Middleware } from 'koa';

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

export const ASSETS_PREFIX = '/assets/';

export function staticAssets(publicDir: string): Middleware {
  const files = new Map<string, { body: Buffer; type: string; etag: string }>();
  if (existsSync(publicDir)) {
    for (const name of readdirSync(publicDir)) {
      const type = TYPES[path.extname(name)];
      const file = path.join(publicDir, name);
      if (!type || !statSync(file).isFile()) continue;
      const body = readFileSync(file);
      files.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
    }
  }
  return async (ctx, next) => {
    if (!ctx.path.startsWith(ASSETS_PREFIX) || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    const asset = files.get(ctx.path.slice(ASSETS_PREFIX.length));
    if (!asset) return next();
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.set('ETag', asset.etag);
    if (ctx.get('if-none-match') === asset.etag) {
      ctx.status = 304;
      return;
    }
    ctx.type = asset.type;
    ctx.body = asset.body;
  };
}
