// The run worker: a Node child forked by the extension host (src/host/runs/worker-client.ts). It receives
// one `start` request, runs it with the runs layer and forwards the run's events unchanged; `cancel`
// aborts the run after the current batch. Training never runs in the extension host, which stays responsive.
import type { HostToWorker, WorkerRequest, WorkerToHost, FailureKind } from '../shared/worker-protocol';
import { parseHostMessage } from '../shared/event-schemas';
import { messagePreview } from '../shared/schema-kit';
import { buildJobConfig } from '../runs/config-file';
import { runJob, type JobContext, type JobResult } from '../runs/jobs';
import { runDemo } from '../runs/demo';
import { prepareResume } from '../runs/resume';
import { previewAttack } from '../runs/jobs/preview';
import { describeProgress, runMatrix } from '../runs/matrix/run';
import { readMatrixFile } from '../runs/matrix/spec';
import { submitToSlurm } from '../runs/executors/slurm-worker';
import { BACKEND_PREFERENCES, type BackendPreference } from '../engine/backend';
import { DivergedError, RunCancelledError } from '../engine/train';
import { InputError } from '../engine/types';

const controller = new AbortController();
let started = false;

function send(msg: WorkerToHost): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

const done = ({ runId, runDir, backend, acc, asr, ra, der, table, modelPath }: JobResult): Promise<void> =>
  send({ type: 'runDone', result: { runId, runDir, backend, acc, asr, ra, der, table, modelPath } });

async function run(request: WorkerRequest): Promise<void> {
  const { job } = request;
  const ctx: JobContext = { cwd: request.cwd, runsDir: request.runsDir, signal: controller.signal, onEvent: (e) => void send(e) };
  if (request.slurm && (job.kind === 'job' || job.kind === 'matrix'))
    return submitToSlurm(job, { cwd: request.cwd, runsDir: request.runsDir, slurm: request.slurm }, (message) =>
      send({ type: 'log', message }),
    );
  switch (job.kind) {
    case 'job':
      // The config crossed a process boundary: the same builder as config files checks it.
      return done(await runJob(buildJobConfig(job.config, 'the job'), ctx));
    case 'demo': {
      if (!BACKEND_PREFERENCES.includes(job.backend as BackendPreference)) throw new InputError(`unknown backend '${job.backend}'`);
      // The demo's three runs each report `started`; the last one's result arrives at the end.
      const result = await runDemo({ backend: job.backend as BackendPreference, seed: job.seed, quick: job.quick }, ctx);
      await send({
        type: 'log',
        message: `demo finished: ACC ${result.acc.toFixed(2)}%, ASR ${result.asr.toFixed(2)}% (runs ${result.runIds.join(', ')})`,
      });
      return;
    }
    case 'resume': {
      const { config, point } = await prepareResume(job.runDir);
      return done(await runJob(config, { ...ctx, resume: point }));
    }
    case 'matrix': {
      // Each cell's run reports `started`, so the host follows them in turn, as for the demo.
      const spec = readMatrixFile(job.file);
      const r = await runMatrix(spec, {
        ...ctx,
        onProgress: (p) => {
          const message = describeProgress(p);
          if (message) void send({ type: 'log', message: `matrix ${spec.name} ${message}` });
        },
      });
      const failed = r.outcomes.filter((o) => o.state !== 'finished').length;
      await send({
        type: 'log',
        message: `matrix ${r.id}: ${r.outcomes.length - failed} of ${r.outcomes.length} cells finished (folder ${r.dir})`,
      });
      return;
    }
    case 'preview': {
      const config = buildJobConfig(job.config, 'the preview');
      if (config.kind !== 'train') throw new InputError(`an attack preview needs a train config, not '${config.kind}'`);
      const p = await previewAttack(config, { samples: job.samples, signal: controller.signal, emit: (e) => void send(e) });
      await send({
        type: 'facts',
        title: p.title,
        facts: [
          { label: 'Attack', value: p.summary },
          { label: 'Backend', value: p.backend },
        ],
      });
      for (const f of p.figures) await send({ type: 'images', ...f });
      return;
    }
    default: {
      const _: never = job;
      return _;
    }
  }
}

function classify(e: unknown): { kind: FailureKind; file?: string } {
  if (e instanceof InputError) return { kind: 'input', file: e.file };
  if (e instanceof DivergedError) return { kind: 'diverged' };
  if (e instanceof Error && /no TensorFlow\.js backend|backend .*(not available|failed)/i.test(e.message)) return { kind: 'backend' };
  return { kind: 'internal' };
}

async function handle(msg: HostToWorker): Promise<void> {
  switch (msg.type) {
    case 'cancel':
      controller.abort();
      return;
    case 'start': {
      if (started) return;
      started = true;
      let code = 0;
      try {
        await run(msg.request);
        await send({ type: 'done' });
      } catch (e) {
        if (e instanceof RunCancelledError) {
          await send({ type: 'cancelled' });
        } else {
          const message = e instanceof Error ? e.message : String(e);
          if (!(e instanceof InputError) && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
          await send({ type: 'failed', message, ...classify(e) });
          code = 1;
        }
      }
      // The wasm backend's thread pool would keep the process alive.
      process.exit(code);
      return;
    }
    default: {
      const _: never = msg;
      return _;
    }
  }
}

process.on('message', (raw: unknown) => {
  const parsed = parseHostMessage(raw);
  if (!('message' in parsed)) {
    process.stderr.write(`worker: dropped a malformed message from the host (${parsed.reason}): ${messagePreview(raw)}\n`);
    return;
  }
  void handle(parsed.message);
});

// The extension host went away (window reload or close): stop at once. The run's status.json still
// says running with this pid, which the run store then reports as interrupted, ready to be resumed.
process.on('disconnect', () => process.exit(2));
