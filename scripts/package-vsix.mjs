/* global process, console */
// Packages the VSIX files from a production dist/ (npm run package builds it first).
//   universal:           <name>-<version>.vsix, the bundles without any native addon: it runs everywhere,
//                        on tfjs-wasm (`--backend native` says in one line that there are no native kernels).
//   platform (--target): <name>-<version>-<target>.vsix, built with `vsce package --target <target>`, adds
//                        dist/nad-kernels-<target>.node (copied there by scripts/build.mjs from
//                        native/addon/prebuilt/<target>/). VS Code and the Marketplace prefer it to the
//                        universal one on that platform.
// Usage: node scripts/package-vsix.mjs [--universal] [--target <target>]...   (neither: both, for this platform)
// A target whose addon is not in dist/ is skipped with one line (build it on that platform: docs/packaging.md).
// Nothing is downloaded.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { name, version } = JSON.parse(readFileSync('package.json', 'utf8'));
const args = process.argv.slice(2);
const targets = args.flatMap((a, i) => (args[i - 1] === '--target' ? [a] : []));
const universal = args.includes('--universal') || targets.length === 0;
if (!args.includes('--universal') && targets.length === 0) targets.push(`${process.platform}-${process.arch}`);

const addonOf = (target) => `nad-kernels-${target}.node`;
const vsce = join('node_modules', '.bin', process.platform === 'win32' ? 'vsce.cmd' : 'vsce');
const common = ['package', '--no-dependencies', '--allow-missing-repository', '--no-rewrite-relative-links'];

/** Runs vsce with only `keep` (a file name in dist/, or none) of the addons in dist/; the others wait in a temp folder. */
function packageWith(keep, extraArgs) {
  const aside = mkdtempSync(join(tmpdir(), 'nad-vsix-'));
  const moved = readdirSync('dist').filter((f) => /^nad-kernels-.*\.node$/.test(f) && f !== keep);
  try {
    for (const f of moved) renameSync(join('dist', f), join(aside, f));
    execFileSync(vsce, [...common, ...extraArgs], { stdio: 'inherit' });
  } finally {
    for (const f of moved) renameSync(join(aside, f), join('dist', f));
    rmSync(aside, { recursive: true, force: true });
  }
}

if (universal) packageWith(undefined, ['--out', `${name}-${version}.vsix`]);
for (const target of targets) {
  if (!existsSync(join('dist', addonOf(target)))) {
    console.log(`[package-vsix] no dist/${addonOf(target)} (build it on ${target}: node native/build-addon.mjs): ${target} VSIX skipped`);
    continue;
  }
  packageWith(addonOf(target), ['--target', target, '--out', `${name}-${version}-${target}.vsix`]);
}
