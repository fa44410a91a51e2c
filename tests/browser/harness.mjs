// What the browser tests share: where things are (from the environment
// CTest sets), a free loopback port, an espy on it, Chromium launched
// headless through playwright-core, and pages that collect console and page
// errors.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(join(process.env.ESPY_WEB_DIR ?? 'web', 'package.json'));
const { chromium } = require('playwright-core');

export const BIN = process.env.ESPY_BIN ?? 'build/espy';
export const OUT = process.env.ESPY_TEST_OUTPUT ?? join(tmpdir(), 'espy-browser');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(OUT, { recursive: true });

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Starts espy on a free loopback port with a new data dir (named from
// `prefix`) and resolves once /healthz answers. `post(points)` writes JSON
// points and expects 202; `stop()` ends the server and removes the data dir.
export async function startEspy(prefix) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const server = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (i > 400) throw new Error('espy did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    base,
    async post(points) {
      const res = await fetch(`${base}/v1/metrics`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(points),
      });
      assert.equal(res.status, 202, await res.text());
    },
    async stop() {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// launch() gives every run a fresh temporary profile (user-data-dir).
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

// A page in its own context; `errors` collects uncaught exceptions and
// console errors, which every test expects to stay empty.
export async function newPage(browser, options = {}, viewport = { width: 1280, height: 860 }) {
  const context = await browser.newContext({ viewport, ...options });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  return { page, context, errors };
}
