// The worker's Slurm path: a run or a matrix started from the extension with `nad.executor` "slurm" is
// submitted (its folders and job scripts written, sbatch called) and the worker returns; the jobs then
// write their run folders, which the extension reads as it reads any run.
import { buildJobConfig } from '../config-file';
import { readMatrixFile } from '../matrix/spec';
import type { WorkerJob } from '../../shared/worker-protocol';
import { submitMatrix, submitRun, type SlurmContext } from './slurm-submit';

export async function submitToSlurm(
  job: Extract<WorkerJob, { kind: 'job' | 'matrix' }>,
  ctx: SlurmContext,
  log: (message: string) => Promise<void>,
): Promise<void> {
  if (job.kind === 'job') {
    const config = buildJobConfig(job.config, 'the job');
    const r = submitRun(config, ctx);
    await log(`submitted to Slurm as job ${r.jobId}; run folder ${r.runDir} (slurm.sbatch, slurm.out, slurm.err)`);
    return;
  }
  const spec = readMatrixFile(job.file);
  const lines: string[] = [];
  const sub = await submitMatrix(spec, { ...ctx, onLine: (l) => lines.push(l) });
  for (const l of lines) await log(`matrix ${spec.name} ${l}`);
  await log(`matrix ${sub.id}: submitted to Slurm (folder ${sub.dir}); the matrix page follows the jobs`);
}
