// `npm run soak` (not part of `npm test`): SOAK_RUNS (default 50) short runs in a row through the
// extension in a real VS Code, then a summary of the extension host's and the workers' memory and open
// file descriptors over the runs, and a verdict against the limits in samples.ts.
//   SOAK_RUNS=10 node --import tsx test/soak/soak.ts        (after `npm run build`)
// Writes test-results/soak-<time>.json (samples, summaries, verdicts) and .csv (one row per run).
// Exits non-zero when a limit is passed, a run failed, or VS Code did not run.
import { runTests } from '@vscode/test-electron';
import * as esbuild from 'esbuild';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../scripts/vscode-test/workbench';
import type { SuiteResults } from '../integration/suite/index';
import { judge, LIMITS, summarise, taskCapFilling, warmupRuns, type SeriesName, type SoakSamples } from './samples';

const OUT = join(REPO_ROOT, '.cache', 'soak', `suite-${process.pid}`);
const SHIM = join(REPO_ROOT, 'scripts', 'vscode-test', 'code');
/** Per run, for VS Code's overall timeout: a short run takes a few seconds; this is for a loaded machine. */
const MS_PER_RUN = 60_000;

/** The integration suite's mocha runner, with the soak suite as its only test file. */
async function buildSuite(): Promise<string> {
  rmSync(OUT, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: {
      index: join(REPO_ROOT, 'test', 'integration', 'suite', 'index.ts'),
      'soak.test': join(REPO_ROOT, 'test', 'soak', 'host', 'soak.test.ts'),
    },
    outdir: OUT,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode', 'mocha'],
    sourcemap: 'inline',
    logLevel: 'warning',
  });
  return join(OUT, 'index.js');
}

const SERIES: readonly { readonly key: SeriesName; readonly label: string; readonly digits: number }[] = [
  { key: 'hostRssMb', label: 'ext host RSS (MB)', digits: 1 },
  { key: 'hostHeapMb', label: 'ext host heap used (MB)', digits: 1 },
  { key: 'hostHeapTotalMb', label: 'ext host heap total (MB)', digits: 1 },
  { key: 'hostExternalMb', label: 'ext host external+buffers (MB)', digits: 1 },
  { key: 'hostFds', label: 'ext host open fds', digits: 0 },
  { key: 'workerPeakRssMb', label: 'worker peak RSS (MB)', digits: 1 },
  { key: 'workerFds', label: 'worker open fds (max)', digits: 0 },
  { key: 'seconds', label: 'run wall time (s)', digits: 1 },
];

function report(data: SoakSamples): { text: string; ok: boolean; json: object; csv: string } {
  const { samples } = data;
  const lines: string[] = [];
  const pad = (s: string, n: number): string => s.padStart(n);
  lines.push(
    `soak: ${samples.length} runs in ${data.wallSeconds.toFixed(0)} s; extension host pid ${data.hostPid} (${data.node}), full GC before each sample: ${data.gcForced ? 'yes' : 'no'}; warm-up: ${warmupRuns(samples.length)} runs; kinds: ${Object.entries(
      data.kinds ?? {},
    )
      .map(([k, n]) => `${n} ${k}`)
      .join(', ')} (worker limits are judged per kind)`,
  );
  lines.push(
    `${'series'.padEnd(32)}${pad('before', 8)}${pad('first', 8)}${pad('last', 8)}${pad('min', 8)}${pad('max', 8)}${pad('slope 2nd half', 16)}${pad('growth', 9)}`,
  );
  const summaries: Record<string, object> = {};
  for (const { key, label, digits } of SERIES) {
    const s = summarise(samples, key);
    summaries[key] = s;
    const before = key in data.baseline ? data.baseline[key as keyof SoakSamples['baseline']].toFixed(digits) : '';
    lines.push(
      `${label.padEnd(32)}${pad(before, 8)}${pad(s.first.toFixed(digits), 8)}${pad(s.last.toFixed(digits), 8)}${pad(s.min.toFixed(digits), 8)}${pad(s.max.toFixed(digits), 8)}${pad(`${s.slopeSecondHalf.toFixed(3)}/run`, 16)}${pad(s.growthAfterWarmup.toFixed(digits), 9)}`,
    );
  }
  const verdicts = judge(samples);
  if (taskCapFilling(samples))
    lines.push(
      "note: the run manager's kept runs (tasksKept) still grew over the second half, so the extension host's heap and RSS are not judged: they grow by design until its cap (the newest 20 ended runs); run SOAK_RUNS=40 or more",
    );
  const unread = samples.filter((s) => s.workerPolls === 0).map((s) => s.run);
  lines.push('limits:');
  for (const v of verdicts)
    lines.push(
      `  ${v.ok ? 'ok  ' : 'FAIL'} ${v.limit.series} ${v.limit.what} ${v.value.toFixed(3)} <= ${v.limit.max} ${v.limit.unit} (${v.limit.why})`,
    );
  if (unread.length) lines.push(`  FAIL the worker's /proc entry was never read in runs ${unread.join(', ')}`);
  const ok = verdicts.every((v) => v.ok) && unread.length === 0;
  lines.push(ok ? 'soak: flat' : 'soak: NOT flat (see FAIL above)');
  const header = Object.keys(samples[0]);
  const csv = [header.join(','), ...samples.map((s) => header.map((h) => String(s[h as keyof typeof s])).join(','))].join('\n') + '\n';
  return { text: lines.join('\n'), ok, json: { ...data, limits: LIMITS, summaries, verdicts, flat: ok }, csv };
}

async function main(): Promise<number> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'extension.js'))) throw new Error('dist/extension.js is missing: run `npm run build` first');
  const runs = Number(process.env.SOAK_RUNS ?? 50);
  if (!Number.isInteger(runs) || runs < 2) throw new Error(`SOAK_RUNS must be an integer >= 2, got ${process.env.SOAK_RUNS}`);
  // The shim's timeout for the whole suite; the default (300 s) is for the extension-host tests.
  process.env.NAD_VSCODE_TEST_TIMEOUT_MS ??= String(runs * MS_PER_RUN + 120_000);
  const extensionTestsPath = await buildSuite();
  const workspace = mkdtempSync(join(tmpdir(), 'nad-soak-ws-'));
  const resultsDir = mkdtempSync(join(tmpdir(), 'nad-soak-results-'));
  const started = Date.now();
  let runError: string | undefined;
  try {
    await runTests({
      vscodeExecutablePath: SHIM,
      extensionDevelopmentPath: REPO_ROOT,
      extensionTestsPath,
      launchArgs: [workspace, '--disable-extensions'],
      extensionTestsEnv: { NAD_TEST_RESULTS_DIR: resultsDir, SOAK_WORKSPACE: workspace, SOAK_RUNS: String(runs) },
    });
  } catch (e) {
    runError = (e as Error).message;
  }
  const wall = (Date.now() - started) / 1000;
  const reportFile = join(resultsDir, 'report.txt');
  if (existsSync(reportFile)) process.stdout.write(readFileSync(reportFile, 'utf8'));
  const samplesFile = join(resultsDir, 'soak-samples.json');
  const resultsFile = join(resultsDir, 'results.json');
  const results = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as SuiteResults) : undefined;
  const data = existsSync(samplesFile) ? (JSON.parse(readFileSync(samplesFile, 'utf8')) as SoakSamples) : undefined;
  const keep = process.env.NAD_KEEP_TEMP === '1';
  for (const dir of keep ? [] : [resultsDir, workspace, OUT]) rmSync(dir, { recursive: true, force: true });
  if (results?.failed.length) for (const f of results.failed) console.error(`failed: ${f.title}\n${f.error}`);
  if (!data) {
    console.error(`soak: no samples (${runError ?? 'the suite wrote none'}); ${wall.toFixed(0)} s`);
    return 1;
  }
  const { text, ok, json, csv } = report(data);
  console.log(text);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = join(REPO_ROOT, 'test-results');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `soak-${stamp}.json`), JSON.stringify({ ...json, totalWallSeconds: wall }, null, 2));
  writeFileSync(join(outDir, `soak-${stamp}.csv`), csv);
  console.log(`soak: ${wall.toFixed(0)} s in all (VS Code start included); test-results/soak-${stamp}.json and .csv`);
  return ok && !runError && (results?.failures ?? 1) === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  },
);
