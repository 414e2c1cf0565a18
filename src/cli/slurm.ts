// The Slurm commands of the CLI: `nad run-folder <dir>` (what a Slurm job runs) and `nad cancel <run
// folder...>` (scancel, then the run is marked cancelled). `--executor slurm` itself is in executor.ts.
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InputError } from '../engine/types';
import { runPreparedFolder } from '../runs/executors/slurm-submit';
import { cancelRunJob, trackRuns } from '../runs/executors/slurm';
import { controller, printResult } from './execute';
import { createReporter } from './report';

type Flags = Record<string, string | boolean | string[] | undefined>;

export function addSlurmCommands(program: Command): void {
  program
    .command('run-folder')
    .argument('<dir>', 'a run folder prepared by --executor slurm')
    .description(
      "run the job of a prepared run folder in it, from its last saved epoch if an earlier attempt saved one (what a Slurm job's script runs)",
    )
    .option('-q, --quiet', 'no progress output')
    .action(async (dir: string, f: Flags) => {
      const reporter = createReporter({ quiet: Boolean(f.quiet) });
      try {
        const r = await runPreparedFolder(resolve(dir), { onEvent: reporter.onEvent, signal: controller.signal });
        reporter.stop();
        if (r) printResult({ backend: 'auto', seed: '0' }, { ...r });
        else process.stderr.write(`nad: ${dir} has finished already; nothing to do\n`);
      } finally {
        reporter.stop();
      }
    });

  program
    .command('cancel')
    .argument('<dirs...>', 'run folders submitted to Slurm')
    .description('cancel runs submitted to Slurm (scancel) and mark them cancelled once Slurm has stopped them')
    .action(async (dirs: string[]) => {
      const folders = dirs.map((d) => resolve(d));
      for (const d of folders) process.stderr.write(`scancel ${(await cancelRunJob(d)).jobId} (${d})\n`);
      for (let i = 0; i < 30; i++) {
        const states = await trackRuns(folders);
        if ([...states.values()].every((s) => s.phase === 'ended')) {
          for (const [d, s] of states) process.stderr.write(`${d}: Slurm ${s.state}\n`);
          return;
        }
        await sleep(1000);
      }
      throw new InputError('Slurm has not stopped the jobs within 30 s; `squeue` shows them');
    });
}
