// Runs inside the extension host (started by test/soak/soak.ts, never by `npm test`): SOAK_RUNS short
// runs in a row (training, Fine-Pruning, NAD and evaluation in turn) through "NAD: Run Config File", each in its own worker. After each run it samples
// this extension host (RSS, V8 heap after a full GC, open file descriptors) and, while the run lasts, the
// worker's /proc entry (peak RSS, open file descriptors). The samples go to soak-samples.json in
// NAD_TEST_RESULTS_DIR; the launcher judges them.
import * as assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as vscode from 'vscode';
import type { NadApi } from '../../../src/host/api';
import type { RunTask } from '../../../src/host/runs/manager';
import { writeSmallMnist } from '../../integration/fixtures/small-mnist';
import { ended, note } from '../../integration/fixtures/host-runs';
import type { SoakSample, SoakSamples } from '../samples';

const EXTENSION_ID = 'nad-vscode.nad-vscode';
const RUN_TIMEOUT_MS = 120_000;
/** How often the worker's /proc entry is read while it runs. */
const WORKER_POLL_MS = 50;

const workspace = (): string => {
  const dir = process.env.SOAK_WORKSPACE;
  assert.ok(dir, 'SOAK_WORKSPACE is not set: run this through `npm run soak`');
  return dir;
};

/** A full collection before each heap sample, so that the series shows what is kept, not what awaits GC. */
function fullGc(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

function fdCount(pid: number | 'self'): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined; // the process is gone, or this is not Linux
  }
}

/** VmHWM (peak resident set) and VmRSS in MB from /proc/<pid>/status. */
function procMemory(pid: number): { hwmMb: number; rssMb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number | undefined => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) : undefined;
    };
    const hwm = kb('VmHWM');
    const rss = kb('VmRSS');
    return hwm !== undefined && rss !== undefined ? { hwmMb: hwm / 1024, rssMb: rss / 1024 } : undefined;
  } catch {
    return undefined;
  }
}

interface WorkerWatch {
  pid: number | undefined;
  peakRssMb: number | undefined;
  maxFds: number | undefined;
  polls: number;
}

/** Polls the task's worker until the task ends; /proc entries vanish with the process, so keep the last read. */
function watchWorker(task: RunTask): { stop: () => WorkerWatch } {
  const seen: WorkerWatch = { pid: undefined, peakRssMb: undefined, maxFds: undefined, polls: 0 };
  const timer = setInterval(() => {
    const pid = task.worker?.pid;
    if (pid === undefined) return;
    seen.pid = pid;
    const mem = procMemory(pid);
    const fds = fdCount(pid);
    if (!mem || fds === undefined) return;
    seen.polls++;
    seen.peakRssMb = Math.max(seen.peakRssMb ?? 0, mem.hwmMb);
    seen.maxFds = Math.max(seen.maxFds ?? 0, fds);
  }, WORKER_POLL_MS);
  return {
    stop: () => {
      clearInterval(timer);
      return seen;
    },
  };
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

suite('Soak', () => {
  test('short runs in a row through the extension: host and worker sampled after each', async function () {
    const runs = Number(process.env.SOAK_RUNS ?? 50);
    assert.ok(Number.isInteger(runs) && runs >= 2, `SOAK_RUNS must be an integer >= 2, got ${process.env.SOAK_RUNS}`);
    this.timeout(runs * RUN_TIMEOUT_MS + 60_000);
    const ext = vscode.extensions.getExtension<NadApi>(EXTENSION_ID);
    assert.ok(ext, `extension ${EXTENSION_ID} is not loaded`);
    const api = await ext.activate();
    const gc = fullGc();
    const dir = workspace();
    writeSmallMnist(join(dir, 'data', 'soak-mnist'), { train: 20, test: 10, repoRoot: ext.extensionPath });
    await vscode.workspace.getConfiguration('nad').update('maxConcurrentRuns', 1, vscode.ConfigurationTarget.Workspace);
    mkdirSync(join(dir, 'configs'), { recursive: true });
    // The runs cycle through the kinds a user runs: training, then on the first trained model a defense
    // (Fine-Pruning), NAD with its teacher, and an evaluation; each kind has its own config file.
    const small = { batchSize: 50, epochs: 1 };
    const data = '../data/soak-mnist';
    const configs: Record<string, Record<string, unknown>> = {
      train: { kind: 'train', name: 'soak', data, backdoor: { injectPortion: 0.1 }, training: small },
    };
    const configFile = (kind: string): string => {
      const file = join(dir, 'configs', `soak-${kind}.nad.json`);
      writeFileSync(file, JSON.stringify(configs[kind]));
      return file;
    };
    const KINDS = ['train', 'defend', 'erase', 'eval'] as const;
    const kindsRun: Record<string, number> = {};
    const sampleHost = (): Pick<SoakSample, 'hostRssMb' | 'hostHeapMb' | 'hostHeapTotalMb' | 'hostExternalMb' | 'hostFds'> => {
      gc?.();
      const m = process.memoryUsage();
      return {
        hostRssMb: m.rss / 2 ** 20,
        hostHeapMb: m.heapUsed / 2 ** 20,
        hostHeapTotalMb: m.heapTotal / 2 ** 20,
        hostExternalMb: (m.external + m.arrayBuffers) / 2 ** 20,
        hostFds: fdCount('self') ?? -1,
      };
    };
    const baseline = sampleHost();
    note(
      `      soak: ${runs} runs; before the first: host RSS ${baseline.hostRssMb.toFixed(1)} MB, ${baseline.hostFds} fds, GC ${gc ? 'forced' : 'not available'}`,
    );
    const samples: SoakSample[] = [];
    const runDirs: string[] = [];
    const started = Date.now();
    for (let i = 1; i <= runs; i++) {
      const t0 = Date.now();
      // Until a model is trained, only training; then the four kinds in turn.
      const kind = configs['defend'] ? KINDS[(i - 1) % KINDS.length] : 'train';
      kindsRun[kind] = (kindsRun[kind] ?? 0) + 1;
      const task = await vscode.commands.executeCommand<RunTask | undefined>('nad.runConfigFile', vscode.Uri.file(configFile(kind)));
      assert.ok(task, `run ${i}: "NAD: Run Config File" did not start a run`);
      const watch = watchWorker(task);
      const done = await ended(task, RUN_TIMEOUT_MS);
      const worker = watch.stop();
      assert.equal(done.state, 'finished', `run ${i} (${kind}): ${done.failure?.message ?? done.state}`);
      if (kind === 'train' && !configs['defend'] && done.runDir) {
        const model = join(done.runDir, 'model', 'model.safetensors');
        configs['defend'] = { kind: 'defend', name: 'soak-fp', method: 'fine-pruning', model, data, cleanCount: 10, training: small };
        configs['erase'] = {
          kind: 'erase',
          name: 'soak-nad',
          student: model,
          data,
          cleanCount: 10,
          teacherTraining: small,
          training: small,
        };
        configs['eval'] = { kind: 'eval', name: 'soak-eval', model, test: data };
      }
      // A user closes the panel the run opened; what is left behind afterwards is what a leak looks like.
      if (done.runDir) {
        runDirs.push(done.runDir);
        api.panels.find(done.runDir)?.panel.dispose();
      }
      await settle(200);
      const sample: SoakSample = {
        run: i,
        kind,
        seconds: (Date.now() - t0) / 1000,
        ...sampleHost(),
        workerPid: worker.pid ?? -1,
        workerPeakRssMb: worker.peakRssMb ?? -1,
        workerFds: worker.maxFds ?? -1,
        workerPolls: worker.polls,
        tasksKept: api.manager.all().length,
        lastSnapshotKb: JSON.stringify(done.snapshot ?? null).length / 1024,
        panelsOpen: runDirs.filter((d) => api.panels.find(d) !== undefined).length,
      };
      samples.push(sample);
      note(
        `      run ${String(i).padStart(3)} (${kind}): ${sample.seconds.toFixed(1)} s, host RSS ${sample.hostRssMb.toFixed(1)} MB heap ${sample.hostHeapMb.toFixed(1)} MB fds ${sample.hostFds}; worker peak RSS ${sample.workerPeakRssMb.toFixed(1)} MB fds ${sample.workerFds}; ${sample.tasksKept} tasks kept, last snapshot ${sample.lastSnapshotKb.toFixed(0)} KB, ${sample.panelsOpen} panels open`,
      );
    }
    const out: SoakSamples = {
      runs,
      gcForced: gc !== undefined,
      hostPid: process.pid,
      node: process.version,
      wallSeconds: (Date.now() - started) / 1000,
      kinds: kindsRun,
      baseline,
      samples,
    };
    const resultsDir = process.env.NAD_TEST_RESULTS_DIR;
    if (resultsDir) writeFileSync(join(resultsDir, 'soak-samples.json'), JSON.stringify(out, null, 2));
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });
});
