// Folders shipped beside the code (templates/, public/): found from the package root, so they
// resolve the same from src/ (tsx in development) and from a compiled dist/ (production), wherever
// the build was written inside the package.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'templates'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`paymail: no package root (package.json + templates/) above ${from}`);
  }
}

export const PACKAGE_ROOT = packageRoot(path.dirname(fileURLToPath(import.meta.url)));
export const TEMPLATES_DIR = path.join(PACKAGE_ROOT, 'templates') + path.sep;
export const PUBLIC_DIR = path.join(PACKAGE_ROOT, 'public') + path.sep;
