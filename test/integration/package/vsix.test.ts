// Packaging: the VSIX that `npm run package` builds holds only what runs, installs into a real
// VS Code (not as a development extension) and its command works there.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { REPO_ROOT, Workbench, installVsix } from '../../../scripts/vscode-test/workbench';
import { TEST_TIMEOUT_MS, runCommand, treeRows, viewPane, windowTitle } from '../../../scripts/vscode-test/ui';
import { makeWorkspace } from '../fixtures/workspace';

const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; version: string; publisher: string };
const vsixPath = process.env.NAD_VSIX ?? join(REPO_ROOT, `${manifest.name}-${manifest.version}.vsix`);
const MAX_VSIX_BYTES = 20 * 1024 * 1024;

/** What must never ship: sources, tests, build scripts, caches, results, run folders, the shared data sets. */
const FORBIDDEN: readonly RegExp[] = [
  /^extension\/(src|test|scripts|webview|native|node_modules|\.cache|\.ci|\.git|\.nad|\.vscode-test|test-results)\//,
  /^extension\/(package-lock\.json|tsconfig\.json|eslint\.config\.mjs|\.vscodeignore|\.gitignore)$/,
  /\.map$/,
  /(?<!\.d)\.ts$/,
  /\.vsix$/,
  /(^|\/)shared\//,
  /cifar10|nad-triggers|nad-reference|\.safetensors$|\.pt$/,
];

const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((c) => c()));

test('the VSIX holds the bundles and manifest, and no sources, tests, caches or data', { timeout: TEST_TIMEOUT_MS }, () => {
  assert.ok(existsSync(vsixPath), `${vsixPath} is missing: run \`npm run package\` first`);
  const entries: { name: string; size: number }[] = [];
  unzipSync(readFileSync(vsixPath), {
    filter: (f) => {
      entries.push({ name: f.name, size: f.originalSize });
      return false;
    },
  });
  const size = statSync(vsixPath).size;
  const unpacked = entries.reduce((s, e) => s + e.size, 0);
  console.log(
    `  ${vsixPath.slice(REPO_ROOT.length + 1)}: ${(size / 1024 / 1024).toFixed(2)} MB, ${entries.length} files, ${(unpacked / 1024 / 1024).toFixed(2)} MB unpacked`,
  );
  for (const e of entries) console.log(`    ${String(e.size).padStart(9)}  ${e.name}`);
  const names = entries.map((e) => e.name);
  // The wizards read the registries from dist/*.json (the extension host never loads the engine).
  for (const required of [
    'extension.vsixmanifest',
    'extension/package.json',
    'extension/dist/extension.js',
    'extension/dist/worker.js',
    'extension/dist/defenses.json',
    'extension/dist/attacks.json',
  ]) {
    assert.ok(names.includes(required), `${required} is not in the VSIX`);
  }
  const forbidden = names.filter((n) => FORBIDDEN.some((re) => re.test(n)));
  assert.deepEqual(forbidden, [], `files that must not ship: ${forbidden.join(', ')}`);
  assert.ok(size < MAX_VSIX_BYTES, `the VSIX is ${size} bytes, over ${MAX_VSIX_BYTES}`);
});

test('the VSIX installs into VS Code and "NAD: Show Experiment History" works from it', { timeout: TEST_TIMEOUT_MS }, async () => {
  const extensionsDir = mkdtempSync(join(tmpdir(), 'nad-vsix-extensions-'));
  const ws = makeWorkspace();
  cleanups.push(
    () => rmSync(extensionsDir, { recursive: true, force: true }),
    () => rmSync(ws.dir, { recursive: true, force: true }),
  );
  const output = installVsix(vsixPath, extensionsDir);
  assert.match(output, /successfully installed/i, output);
  const installed = readdirSync(extensionsDir).filter((d) => d.startsWith(`${manifest.publisher}.${manifest.name}-`));
  assert.deepEqual(installed, [`${manifest.publisher}.${manifest.name}-${manifest.version}`]);

  const wb = await Workbench.start({ name: 'vsix', workspace: ws.dir, extensionsDir });
  try {
    await wb.step('installed extension', async () => {
      assert.doesNotMatch(
        await windowTitle(wb.page),
        /Extension Development Host/,
        'the window runs a development extension, not the installed one',
      );
      await runCommand(wb.page, 'NAD: Show Experiment History');
      const rows = await treeRows(viewPane(wb.page, 'Runs'), 3);
      assert.ok(
        rows.some((r) => r.label === ws.finishedLabel && r.description.includes('ACC')),
        JSON.stringify(rows),
      );
      console.log(`  screenshot: ${await wb.screenshot('vsix-runs-view')}`);
    });
  } finally {
    await wb.close();
  }
});
