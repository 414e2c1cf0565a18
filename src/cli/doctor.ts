// `nad doctor`: the backend, the disk and the runs folder's health; with --fix-interrupted / --remove-temp it
// also applies those fixes. Exit code 0 when healthy (or everything found was fixed), 1 when problems remain.
import type { Command } from 'commander';
import { join } from 'node:path';
import {
  checkDisk,
  checkRuns,
  formatDoctorReport,
  hasProblems,
  machineFacts,
  markInterrupted,
  removeTempFiles,
  type RunsReport,
} from '../runs/doctor';
import { RUNS_SUBDIR } from '../runs/run-store';
import { removeStaleLocks } from '../runs/run-lock';

/** Raised after the report when problems remain: main() prints it and exits with 1. */
export class DoctorFoundProblems extends Error {}

interface DoctorFlags {
  runsDir?: string;
  json?: boolean;
  fixInterrupted?: boolean;
  removeTemp?: boolean;
  removeStaleLocks?: boolean;
  backend?: boolean;
}

export function addDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      'check the backend (tfjs-node, wasm SIMD/threads), the disk and the runs folder (damaged runs, dead runs, temp files); ' +
        'exits 1 when problems remain',
    )
    .option('--runs-dir <dir>', 'runs folder (default ./.nad/runs)')
    .option('--json', 'as JSON')
    .option('--fix-interrupted', 'mark runs whose process is gone as interrupted (status.json only)')
    .option('--remove-temp', 'remove temp files left by crashed writes (older than 10 minutes, writer gone)')
    .option('--remove-stale-locks', "remove run.lock files whose process is gone (this machine's only)")
    .option('--no-backend', 'skip starting the backends (faster)')
    .action(async (f: DoctorFlags) => {
      const runsDir = f.runsDir ?? join(process.cwd(), RUNS_SUBDIR);
      let runs = checkRuns(runsDir);
      const fixed = { interrupted: [] as string[], tempFilesRemoved: [] as string[] };
      if (f.fixInterrupted) for (const d of runs.dead) if (markInterrupted(d)) fixed.interrupted.push(d.id);
      if (f.removeTemp) fixed.tempFilesRemoved = removeTempFiles(runs.tempFiles, runsDir);
      const locksRemoved = f.removeStaleLocks ? removeStaleLocks(runs.locks.stale) : [];
      if (f.removeStaleLocks) Object.assign(fixed, { staleLocksRemoved: locksRemoved });
      const before: RunsReport = runs;
      if (fixed.interrupted.length || fixed.tempFilesRemoved.length || locksRemoved.length) runs = checkRuns(runsDir);
      const disk = checkDisk(runsDir);
      const machine = machineFacts();
      let engine: Awaited<ReturnType<typeof import('../engine/backend-probe').probeBackends>> | undefined;
      let engineText: string[] = ['backends: not checked (--no-backend)'];
      if (f.backend !== false) {
        const probe = await import('../engine/backend-probe');
        engine = await probe.probeBackends();
        engineText = probe.engineLines(engine);
      }
      const problems = hasProblems(runs, disk);
      if (f.json) process.stdout.write(JSON.stringify({ healthy: !problems, machine, engine, disk, runs, fixed }, null, 2) + '\n');
      else {
        process.stdout.write(formatDoctorReport({ machine, engine: engineText, disk, runs }) + '\n');
        if (fixed.interrupted.length) process.stdout.write(`\nmarked ${fixed.interrupted.length} dead run(s) interrupted\n`);
        if (fixed.tempFilesRemoved.length) process.stdout.write(`removed ${fixed.tempFilesRemoved.length} temp file(s)\n`);
        if (locksRemoved.length) process.stdout.write(`removed ${locksRemoved.length} stale lock(s)\n`);
        const hints: string[] = [];
        if (before.dead.length && !f.fixInterrupted) hints.push('--fix-interrupted marks the dead runs interrupted');
        if (before.tempFiles.length && !f.removeTemp) hints.push('--remove-temp removes the temp files');
        if (before.locks.stale.length && !f.removeStaleLocks) hints.push('--remove-stale-locks removes the stale locks');
        if (hints.length) process.stdout.write(`\n${hints.join('; ')}\n`);
      }
      if (problems) throw new DoctorFoundProblems(`problems found (see the report${f.json ? '\'s "runs" and "disk"' : ' above'})`);
    });
}
