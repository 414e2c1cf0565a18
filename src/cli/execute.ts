// Running one job from the command line: Ctrl-C cancels after the current batch, progress goes to
// stderr, and the result (or with --json, the result object alone) to stdout.
import { buildJobConfig } from '../runs/config-file';
import type { JobConfig } from '../runs/config';
import { runJob } from '../runs/jobs';
import type { ResultRow } from '../shared/run-events';
import type { CommonFlags } from './options';
import { createReporter, formatTable } from './report';
import { runOnSlurm, slurmOptionsOf } from './executor';

type Flags = CommonFlags & Record<string, string | boolean | undefined>;

export const controller = new AbortController();
let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  process.stderr.write('\ncancelling after the current batch (Ctrl-C again to quit now)...\n');
  controller.abort();
});

export function printResult(f: Flags, result: Record<string, unknown> & { table?: readonly ResultRow[] }): void {
  if (f.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else if (result.table) process.stdout.write('\n' + formatTable(result.table) + '\n');
}

/** Checks the config with the one builder (as config files and the worker do), runs it, prints the result. */
export async function execute(f: Flags, config: JobConfig): Promise<void> {
  const checked = buildJobConfig(config, 'the command line');
  const slurm = slurmOptionsOf(f);
  if (slurm) return printResult(f, await runOnSlurm(checked, f, slurm, controller.signal));
  const reporter = createReporter({ quiet: Boolean(f.quiet) });
  try {
    const r = await runJob(checked, { cwd: process.cwd(), runsDir: f.runsDir, onEvent: reporter.onEvent, signal: controller.signal });
    reporter.stop();
    printResult(f, { ...r, ...(r.report ?? {}) });
  } finally {
    reporter.stop();
  }
}
