// `npm test` after build, typecheck and lint: runs every suite in turn (unit, extension host, UI,
// packaging), even when one fails, then prints each suite's counts and the total as the last line,
// "N passed, N failed". Exits non-zero when a suite failed, ran no test, or did not report counts.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const REPO_ROOT = resolve(__dirname, '..', '..');

interface Stage {
  readonly name: string;
  readonly script: string;
  /** A stage that runs longer is stopped and counted as failed; NAD_STAGE_TIMEOUT_S overrides every stage's. */
  readonly timeoutS: number;
}

// Each limit stops a stage that hangs, well above its time on a quiet 2-core machine (2026-12-02: unit ~640 s,
// extension-host 82 s, UI 923 s, package 30 s; the UI stage trains for real: demo, CIFAR erase, runs).
const STAGES: readonly Stage[] = [
  { name: 'unit', script: 'test:unit', timeoutS: 900 },
  { name: 'extension-host', script: 'test:vscode', timeoutS: 600 },
  { name: 'ui', script: 'test:ui', timeoutS: 1200 },
  { name: 'package', script: 'test:package', timeoutS: 600 },
];

const timeoutOf = (stage: Stage): number => Number(process.env.NAD_STAGE_TIMEOUT_S ?? stage.timeoutS);

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

interface StageResult {
  readonly stage: Stage;
  readonly exitCode: number;
  readonly timedOut: boolean;
  readonly counts: Counts | undefined;
  readonly seconds: number;
}

/** Counts from the output of node's test runner (TAP "# pass 3" or spec "ℹ pass 3") or our "N passed, N failed" line. */
export function parseCounts(output: string): Counts | undefined {
  const last = (re: RegExp): number | undefined => {
    const all = [...output.matchAll(re)];
    return all.length ? Number(all[all.length - 1][1]) : undefined;
  };
  const pass = last(/^(?:#|ℹ) pass (\d+)$/gm);
  const fail = last(/^(?:#|ℹ) fail (\d+)$/gm);
  if (pass !== undefined && fail !== undefined) {
    const cancelled = last(/^(?:#|ℹ) cancelled (\d+)$/gm) ?? 0;
    const skipped = (last(/^(?:#|ℹ) skipped (\d+)$/gm) ?? 0) + (last(/^(?:#|ℹ) todo (\d+)$/gm) ?? 0);
    return { passed: pass, failed: fail + cancelled, skipped };
  }
  const plain = [...output.matchAll(/^(?:[\w-]+: )?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?/gm)].pop();
  return plain ? { passed: Number(plain[1]), failed: Number(plain[2]), skipped: Number(plain[3] ?? 0) } : undefined;
}

let interrupted = false;

function runStage(stage: Stage): Promise<StageResult> {
  console.log(`\n===== ${stage.name} tests (npm run ${stage.script}) =====`);
  const started = Date.now();
  return new Promise((resolve) => {
    // Own process group, so that a stage that hangs is stopped whole (server, browser, extension host).
    const child = spawn('npm', ['run', '--silent', stage.script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const signalGroup = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-(child.pid ?? 0), signal);
      } catch {
        // already gone
      }
    };
    // SIGTERM first, so that the harness kills its servers and browsers; SIGKILL what is left.
    let killTimer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const timer = setTimeout(
      () => {
        timedOut = true;
        console.error(`\n[test-all] ${stage.name} tests still running after ${timeoutOf(stage)} s: stopping them`);
        signalGroup('SIGTERM');
        killTimer = setTimeout(() => signalGroup('SIGKILL'), 5_000);
      },
      timeoutOf(stage) * 1000,
    );
    const stopOnSignal = (): void => {
      interrupted = true;
      signalGroup('SIGTERM');
    };
    process.once('SIGINT', stopOnSignal);
    process.once('SIGTERM', stopOnSignal);
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      process.stdout.write(d);
    });
    child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      process.removeListener('SIGINT', stopOnSignal);
      process.removeListener('SIGTERM', stopOnSignal);
      resolve({
        stage,
        exitCode: code ?? (signal ? 128 : 1),
        timedOut,
        counts: parseCounts(output),
        seconds: (Date.now() - started) / 1000,
      });
    });
  });
}

async function main(): Promise<number> {
  const only = process.argv.slice(2);
  const stages = only.length ? STAGES.filter((s) => only.includes(s.name)) : STAGES;
  const results: StageResult[] = [];
  for (const stage of stages) {
    if (interrupted) break;
    results.push(await runStage(stage));
  }

  console.log('\n===== summary =====');
  const total: Counts = { passed: 0, failed: 0, skipped: 0 };
  let ok = true;
  for (const r of results) {
    const c = r.counts;
    const problems: string[] = [];
    if (r.timedOut) problems.push(`stopped after ${timeoutOf(r.stage)} s`);
    else if (r.exitCode !== 0) problems.push(`exit code ${r.exitCode}`);
    if (!c) problems.push('no test counts in its output');
    else if (c.passed + c.failed === 0) problems.push('ran no test');
    // A suite that crashed before counting still counts as one failure.
    const failed = c ? c.failed : 0;
    const stageFailed = failed + (problems.length && failed === 0 ? 1 : 0);
    if (problems.length || failed) ok = false;
    total.passed += c?.passed ?? 0;
    total.failed += stageFailed;
    total.skipped += c?.skipped ?? 0;
    const counts = c ? `${c.passed} passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ''}` : 'no counts';
    console.log(
      `${r.stage.name.padEnd(15)} ${counts.padEnd(32)} ${r.seconds.toFixed(1).padStart(6)} s${problems.length ? `  FAILED: ${problems.join('; ')}` : ''}`,
    );
  }
  console.log(`${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`);
  return ok && !interrupted ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
