// Slurm job states beside the runs' own, for the Runs view and the matrix page: squeue/sacct are asked
// only about run folders that have a slurm.json (and, for the Runs view, only those still running); jobs
// Slurm ended without the run writing its end are settled (marked failed or cancelled) by the runs layer.
import * as vscode from 'vscode';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cancelRunJob, readJobRecord, SLURM_FILES, trackRuns, type SlurmJobState } from '../runs/executors/slurm';
import type { RunSummary } from '../runs/run-store';

/** One line for a matrix page, e.g. "Slurm: 2 PENDING, 1 RUNNING, 1 COMPLETED"; undefined when no cell went to Slurm. */
export async function slurmSummary(runDirs: readonly string[]): Promise<string | undefined> {
  const submitted = runDirs.filter((d) => existsSync(join(d, SLURM_FILES.job)));
  if (!submitted.length) return undefined;
  try {
    const counts = new Map<string, number>();
    for (const s of (await trackRuns(submitted)).values()) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
    return `Slurm: ${[...counts].map(([state, n]) => `${n} ${state}`).join(', ')}`;
  } catch (e) {
    return `Slurm: ${(e as Error).message}`;
  }
}

/** The Slurm jobs of the runs that went to Slurm and still say running, by run folder. */
export async function runningSlurmJobs(runs: readonly RunSummary[]): Promise<Map<string, SlurmJobState>> {
  const dirs = runs.filter((r) => r.status.state === 'running' && existsSync(join(r.dir, SLURM_FILES.job))).map((r) => r.dir);
  if (!dirs.length) return new Map();
  try {
    return await trackRuns(dirs);
  } catch {
    // squeue is gone (the setting changed machines): the runs show their own state only.
    return new Map();
  }
}

/** "Slurm PENDING (Priority)", for a run's description. */
export function describeSlurmJob(s: SlurmJobState): string {
  return `Slurm ${s.state}${s.reason ? ` (${s.reason})` : ''}`;
}

/**
 * Cancel for a run that went to Slurm: scancel its job, then (within 15 s) mark the run cancelled once
 * Slurm has stopped it. False when the run has no Slurm job.
 */
export async function cancelSlurmRun(runDir: string): Promise<boolean> {
  const job = readJobRecord(runDir);
  if (!job) return false;
  try {
    await cancelRunJob(runDir);
    for (let i = 0; i < 30; i++) {
      if ((await trackRuns([runDir])).get(runDir)?.phase === 'ended') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    void vscode.window.showInformationMessage(`NAD: Slurm job ${job.jobId} cancelled (scancel); the run folder is kept.`);
  } catch (e) {
    void vscode.window.showErrorMessage(`NAD: ${(e as Error).message}`);
  }
  return true;
}
