// Builds and caches the embedded database binary (FerretDB) from the Go module proxy.
// Run once by CI and by `npm start` when missing: `npx tsx scripts/build-ferretdb.ts`.
import { ensureFerretdb } from '../src/db/ferretdb-build.ts';

try {
  const bin = await ensureFerretdb((l) => console.log(l));
  console.log(bin);
} catch (e) {
  console.error(`build-ferretdb: ${(e as Error).message}`);
  process.exit(1);
}
