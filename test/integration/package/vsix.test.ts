// Packaging: the VSIX that `npm run package` builds holds only what runs, installs into a real
// VS Code (not as a development extension) and its command works there. The universal VSIX carries no
// native addon; the platform one (`vsce package --target <platform>-<arch>`, scripts/package-vsix.mjs)
// carries this platform's prebuilt addon and says its target in the manifest; the npm package carries it too.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { REPO_ROOT, Workbench, installVsix } from '../../../scripts/vscode-test/workbench';
import { TEST_TIMEOUT_MS, runCommand, treeRows, viewPane, windowTitle } from '../../../scripts/vscode-test/ui';
import { makeWorkspace } from '../fixtures/workspace';

const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; version: string; publisher: string };
const vsixPath = process.env.NAD_VSIX ?? join(REPO_ROOT, `${manifest.name}-${manifest.version}.vsix`);
const MAX_VSIX_BYTES = 20 * 1024 * 1024;
const TARGET = `${process.platform}-${process.arch}`;
const targetVsixPath = join(REPO_ROOT, `${manifest.name}-${manifest.version}-${TARGET}.vsix`);
const prebuiltAddon = join(REPO_ROOT, 'native', 'addon', 'prebuilt', TARGET, 'nad-kernels.node');
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

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

test(
  `the ${TARGET} VSIX carries the prebuilt addon and names its target; the universal one carries none`,
  { timeout: TEST_TIMEOUT_MS },
  (t) => {
    if (!existsSync(prebuiltAddon)) return t.skip(`no prebuilt addon for ${TARGET} (${prebuiltAddon}): no platform VSIX here`);
    assert.ok(existsSync(targetVsixPath), `${targetVsixPath} is missing: run \`npm run package\` first`);
    const names: string[] = [];
    const files = unzipSync(readFileSync(targetVsixPath), {
      filter: (f) => {
        names.push(f.name);
        return f.name === 'extension.vsixmanifest' || f.name.endsWith('.node');
      },
    });
    const addonEntry = `extension/dist/nad-kernels-${TARGET}.node`;
    assert.deepEqual(
      names.filter((n) => n.endsWith('.node')),
      [addonEntry],
      'the platform VSIX holds exactly its own addon',
    );
    assert.equal(sha256(files[addonEntry]), sha256(readFileSync(prebuiltAddon)), `${addonEntry} is not native/addon/prebuilt/${TARGET}`);
    assert.match(new TextDecoder().decode(files['extension.vsixmanifest']), new RegExp(`<Identity [^>]*TargetPlatform="${TARGET}"`));
    const forbidden = names.filter((n) => FORBIDDEN.some((re) => re.test(n)));
    assert.deepEqual(forbidden, [], `files that must not ship: ${forbidden.join(', ')}`);
    // The shipped file loads (in a child: a process loads an addon once) and picks an instruction set.
    const dir = mkdtempSync(join(tmpdir(), 'nad-vsix-addon-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const extracted = join(dir, `nad-kernels-${TARGET}.node`);
    writeFileSync(extracted, files[addonEntry]);
    const script = 'const m = { exports: {} }; process.dlopen(m, process.argv[1]); process.stdout.write(String(m.exports.isa));';
    assert.match(execFileSync(process.execPath, ['-e', script, extracted], { encoding: 'utf8' }), /^(avx512|avx2|portable)$/);

    const universal: string[] = [];
    const head = unzipSync(readFileSync(vsixPath), {
      filter: (f) => {
        universal.push(f.name);
        return f.name === 'extension.vsixmanifest';
      },
    });
    assert.deepEqual(
      universal.filter((n) => n.endsWith('.node')),
      [],
      'the universal VSIX carries no addon',
    );
    assert.doesNotMatch(new TextDecoder().decode(head['extension.vsixmanifest']), /TargetPlatform=/);
  },
);

test('the npm package carries the prebuilt addon, in dist/ and under native/addon/prebuilt/', { timeout: TEST_TIMEOUT_MS }, (t) => {
  if (!existsSync(prebuiltAddon)) return t.skip(`no prebuilt addon for ${TARGET} (${prebuiltAddon})`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const [pack] = JSON.parse(
    execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8' }),
  ) as [{ files: { path: string }[] }];
  const paths = pack.files.map((f) => f.path);
  for (const p of [`dist/nad-kernels-${TARGET}.node`, `native/addon/prebuilt/${TARGET}/nad-kernels.node`])
    assert.ok(paths.includes(p), `${p} is not in the npm package`);
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
