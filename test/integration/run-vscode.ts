// Runs the extension-host suite (test/integration/suite) with @vscode/test-electron's runTests:
//   node --import tsx test/integration/run-vscode.ts            VS Code server + headless Chromium (the `code` shim)
//   node --import tsx test/integration/run-vscode.ts --desktop  desktop VS Code, downloaded by test-electron
//                                                               (needs the internet; on Linux without a display,
//                                                               run it under `xvfb-run -a`)
// Prints "extension-host: N passed, N failed" and exits non-zero when a test failed or VS Code did not run.
import { runTests } from '@vscode/test-electron';
import * as esbuild from 'esbuild';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/vscode-test/workbench';
import { makeWorkspace } from './fixtures/workspace';
import type { SuiteResults } from './suite/index';

const SUITE_SRC = join(REPO_ROOT, 'test', 'integration', 'suite');
// One folder per run: engineers sharing a checkout may run the suite at the same time.
const SUITE_OUT = join(REPO_ROOT, '.cache', 'integration', `suite-${process.pid}`);
const SHIM = join(REPO_ROOT, 'scripts', 'vscode-test', 'code');

/** The extension host loads CommonJS: bundle the runner and each suite file (vscode and mocha stay external). */
async function buildSuite(): Promise<string> {
  rmSync(SUITE_OUT, { recursive: true, force: true });
  const entries = readdirSync(SUITE_SRC).filter((f) => f === 'index.ts' || f.endsWith('.test.ts'));
  await esbuild.build({
    entryPoints: entries.map((f) => join(SUITE_SRC, f)),
    outdir: SUITE_OUT,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode', 'mocha'],
    sourcemap: 'inline',
    logLevel: 'warning',
  });
  return join(SUITE_OUT, 'index.js');
}

async function main(): Promise<number> {
  const desktop = process.argv.includes('--desktop');
  if (!existsSync(join(REPO_ROOT, 'dist', 'extension.js'))) throw new Error('dist/extension.js is missing: run `npm run build` first');
  const extensionTestsPath = await buildSuite();
  const ws = makeWorkspace();
  const resultsDir = mkdtempSync(join(tmpdir(), 'nad-ext-results-'));
  const resultsFile = join(resultsDir, 'results.json');
  const reportFile = join(resultsDir, 'report.txt');
  const started = Date.now();
  let runError: string | undefined;
  try {
    await runTests({
      // Without an executable, test-electron downloads desktop VS Code (the oldest version the manifest accepts by default).
      ...(desktop ? { version: process.env.NAD_VSCODE_VERSION ?? '1.100.3' } : { vscodeExecutablePath: SHIM }),
      extensionDevelopmentPath: REPO_ROOT,
      extensionTestsPath,
      launchArgs: [ws.dir, '--disable-extensions'],
      extensionTestsEnv: {
        NAD_TEST_RESULTS_DIR: resultsDir,
        NAD_TEST_FIXTURE: JSON.stringify(ws),
        ...(process.env.NAD_TEST_GREP ? { NAD_TEST_GREP: process.env.NAD_TEST_GREP } : {}),
      },
    });
  } catch (e) {
    runError = (e as Error).message;
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  // Desktop VS Code prints the extension host's console itself; the browser workbench does not.
  if (!desktop && existsSync(reportFile)) process.stdout.write(readFileSync(reportFile, 'utf8'));
  let results: SuiteResults | undefined;
  if (existsSync(resultsFile)) results = JSON.parse(readFileSync(resultsFile, 'utf8')) as SuiteResults;
  for (const dir of [resultsDir, ws.dir, SUITE_OUT]) rmSync(dir, { recursive: true, force: true });
  if (!results) {
    console.error(`extension-host: the suite did not report results (${runError ?? 'no error from runTests'})`);
    console.log('extension-host: 0 passed, 1 failed');
    return 1;
  }
  // The reporter above showed each failure with its stack; name them once more next to the counts.
  if (results.failed.length) console.error(`failed: ${results.failed.map((f) => f.title).join('; ')}`);
  console.log(
    `extension-host: ${results.passes} passed, ${results.failures} failed${results.pending ? `, ${results.pending} skipped` : ''} (${seconds} s, ${desktop ? 'desktop VS Code' : 'VS Code server + Chromium'})`,
  );
  return results.failures > 0 || runError ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  },
);
