// Bundles the two pages under the directory given as the first argument:
// the dashboard (index.html, app.js, app.css) and the public status page
// (status.html, status.js, status.css). Run by CMake (src/dashboard/) after
// `npm ci`; the files are then embedded into the espy binary.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, 'dist'));
mkdirSync(out, { recursive: true });

await esbuild.build({
  entryPoints: { app: join(here, 'src/main.js'), status: join(here, 'src/status.js') },
  bundle: true,
  minify: true,
  sourcemap: false,
  target: ['es2020'],
  format: 'iife',
  outdir: out,
  logLevel: 'warning',
  legalComments: 'none',
});
for (const html of ['index.html', 'status.html']) copyFileSync(join(here, 'src', html), join(out, html));
