// The run worker: a Node child forked by the extension host (src/host/worker-client.ts). It receives
// one `start` request, runs it with the engine and streams typed messages back; `cancel` aborts the
// run after the current batch. Training never runs in the extension host, which stays responsive.
import type { HostToWorker, WorkerRequest, WorkerToHost, FailureKind } from '../shared/worker-protocol';
import { isHostToWorker } from '../shared/worker-protocol';
import { runJob, type JobContext, type JobEvent, type Phase } from '../runs/jobs';
import { runDemo } from '../runs/demo';
import { prepareResume } from '../runs/resume';
import { DivergedError, RunCancelledError } from '../engine/train';
import { InputError } from '../engine/types';
import { EtaClock } from '../runs/eta';

const controller = new AbortController();
let started = false;

function send(msg: WorkerToHost): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

/** Turns engine events into protocol messages, adding the estimated time left. */
function forward(eta: EtaClock, resumed: boolean): (e: JobEvent) => void {
  let phase: { phase: Phase; epochs: number } = { phase: 'train', epochs: 1 };
  return (e) => {
    switch (e.type) {
      case 'started':
        void send({ ...e, resumed });
        return;
      case 'phase':
        phase = { phase: e.phase, epochs: e.epochs ?? 1 };
        eta.phase(e.phase, e.epochs ?? 1);
        void send(e);
        return;
      case 'progress':
        void send({ type: 'progress', phase: e.phase, epochs: phase.epochs, progress: e.progress, etaSeconds: eta.update(e.progress) });
        return;
      case 'table':
      case 'attention':
      case 'samples':
      case 'log':
        void send(e);
        return;
      default: {
        const _: never = e;
        return _;
      }
    }
  };
}

async function run(request: WorkerRequest): Promise<void> {
  const { job } = request;
  const eta = new EtaClock();
  const ctx = (resumed: boolean): JobContext => ({ cwd: request.cwd, runsDir: request.runsDir, signal: controller.signal, onEvent: forward(eta, resumed) });
  switch (job.kind) {
    case 'job': {
      eta.plan(job.config);
      const result = await runJob(job.config, ctx(false));
      await send({ type: 'runDone', result });
      return;
    }
    case 'demo': {
      // The demo's three runs each report `started`; the last one's result arrives at the end.
      const result = await runDemo({ backend: job.backend, seed: job.seed, quick: job.quick }, ctx(false));
      await send({ type: 'log', message: `demo finished: ACC ${result.acc.toFixed(2)}%, ASR ${result.asr.toFixed(2)}% (runs ${result.runIds.join(', ')})` });
      return;
    }
    case 'resume': {
      const { config, point } = await prepareResume(job.runDir);
      eta.plan(config);
      const result = await runJob(config, { ...ctx(true), resume: point });
      await send({ type: 'runDone', result });
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
  if (!isHostToWorker(raw)) {
    process.stderr.write(`worker: ignoring an unknown message ${JSON.stringify(raw)}\n`);
    return;
  }
  void handle(raw);
});

// The extension host went away (window reload or close): stop at once. The run's status.json still
// says running with this pid, which the run store then reports as interrupted, ready to be resumed.
process.on('disconnect', () => process.exit(2));
