// Running PYTORCH_BENCH_SOURCE (pytorch-bench.ts) for `nad bench`: the one-shot run (the NAD step and
// inference) and the defense units' twins as a long-lived Python process ("serve"): `nad bench` times one
// engine call, then one twin call, and so on, so that both sides of a ratio run under the same load. Timing
// all engine units first and all twins minutes later in one Python run made the ratios follow the load of
// the machine (shared with other jobs) more than the code: on a 2-core machine whose load went from 2 to 15
// during a run, STRIP's entropies read 0.25x in one run and 2.96x in another.
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import os from 'node:os';
import { createInterface } from 'node:readline';
import type { AttackUnitName } from './bench-attacks';
import { DEFENSE_SIZES, type DefenseSizes, type DefenseUnitName } from './bench-defenses';
import { PYTORCH_BENCH_SOURCE } from './pytorch-bench';

export interface PytorchBenchResult {
  readonly python: string;
  readonly torch: string;
  readonly threads: number;
  /** null when the run measured the defense units only. */
  readonly nadImgPerSec: number | null;
  readonly nadImgPerSecBest: number | null;
  readonly inferenceImgPerSec: number | null;
  /** Per twin (defense units', and attack units' cl and wanet): work per second and seconds per call (medians), or why it failed. */
  readonly defenses: Readonly<Record<string, PytorchTwinResult>>;
}

export type PytorchTwinResult = { readonly rate: number; readonly seconds: number } | { readonly error: string };

/** Which Python to run (BenchOptions.python) and where progress goes. */
export interface PythonChoice {
  readonly python?: string;
  readonly onProgress?: (message: string) => void;
}

// Debian's python3-torch lives in the system interpreter, which a pyenv/venv python3 on PATH can shadow.
const PYTHON_CANDIDATES = ['python3', '/usr/bin/python3'];

function runPython(python: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(python, ['-c', PYTORCH_BENCH_SOURCE, ...args], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${python}: ${(stderr || err.message).trim().split('\n').pop()}`));
      else resolve(stdout);
    });
  });
}

/** The part of BenchOptions the PyTorch run reads. */
export interface PytorchRunOptions {
  readonly steps: number;
  readonly warmup: number;
  readonly wasmThreads?: number;
  readonly nad: boolean;
  readonly defenseUnits: readonly DefenseUnitName[];
  readonly defenseSteps: number;
  readonly defenseWarmup: number;
}

/** The arguments of PYTORCH_BENCH_SOURCE: steps, warm-up, threads and the JSON of what to run with which sizes. */
export function pytorchBenchArgs(o: PytorchRunOptions, sizes: DefenseSizes = DEFENSE_SIZES): string[] {
  const config = { nad: o.nad, defenses: o.defenseUnits, defenseSteps: o.defenseSteps, defenseWarmup: o.defenseWarmup, sizes };
  return [String(o.steps), String(o.warmup), String(o.wasmThreads ?? availableCores()), JSON.stringify(config)];
}

type PytorchJson = Omit<PytorchBenchResult, 'python' | 'defenses'> & { defenses?: Record<string, PytorchTwinResult> };

/** The interpreters to try, in order: BenchOptions.python, else NAD_PYTHON, else python3 and /usr/bin/python3. */
export function pythonCandidates(o: PythonChoice): readonly string[] {
  const env = process.env.NAD_PYTHON;
  return o.python ? [o.python] : env ? [env] : PYTHON_CANDIDATES;
}

export async function benchPytorch(o: PytorchRunOptions & PythonChoice): Promise<PytorchBenchResult | { error: string }> {
  const candidates = pythonCandidates(o);
  const errors: string[] = [];
  const what = [o.nad ? 'NAD step, batch 64' : '', o.defenseUnits.length ? `${o.defenseUnits.length} defense twins` : '']
    .filter(Boolean)
    .join(', ');
  for (const python of candidates) {
    try {
      o.onProgress?.(`PyTorch (${python}): ${what}`);
      const out = await runPython(python, pytorchBenchArgs(o), 1_200_000);
      const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as PytorchJson;
      return {
        python,
        torch: r.torch,
        threads: r.threads,
        nadImgPerSec: r.nadImgPerSec ?? null,
        nadImgPerSecBest: r.nadImgPerSecBest ?? null,
        inferenceImgPerSec: r.inferenceImgPerSec ?? null,
        defenses: r.defenses ?? {},
      };
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }
  return { error: `no Python with torch found (${errors.join('; ')})` };
}

/** The one-shot run's result (NAD step) with the interleaved twins' figures as its defenses. */
export function withTwins(
  run: PytorchBenchResult | { error: string } | null,
  twins: InterleavedTwins | { error: string } | undefined,
  units: readonly TwinName[],
): PytorchBenchResult | { error: string } {
  if (!twins) return run ?? { error: 'PyTorch not requested' };
  if ('error' in twins)
    return run && 'torch' in run ? { ...run, defenses: Object.fromEntries(units.map((u) => [u, { error: twins.error }])) } : (run ?? twins);
  const base = run && 'torch' in run ? run : { nadImgPerSec: null, nadImgPerSecBest: null, inferenceImgPerSec: null };
  return { ...base, python: twins.python, torch: twins.torch, threads: twins.threads, defenses: twins.figures() };
}

/** The default thread count of both sides: every core. */
export function availableCores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** A twin's name: a defense unit's (bench-defenses.ts) or an attack unit's (bench-attacks.ts). */
export type TwinName = DefenseUnitName | AttackUnitName;

/** One twin call: its seconds and the work it counts, or why it failed. */
export type TwinCall = { readonly seconds: number; readonly work: number } | { readonly error: string };

/** The arguments of the serving run: no NAD step, no one-shot twins. */
export function twinServerArgs(threads: number, sizes: DefenseSizes): string[] {
  return ['0', '0', String(threads), JSON.stringify({ nad: false, defenses: [], serve: true, sizes })];
}

export class PytorchTwinServer {
  private readonly waiting: Array<(line: string | Error) => void> = [];
  private readonly lines: string[] = [];
  private stderr = '';
  private exited: Error | undefined;

  private constructor(
    private readonly proc: ChildProcessWithoutNullStreams,
    readonly python: string,
  ) {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const w = this.waiting.shift();
      if (w) w(line);
      else this.lines.push(line);
    });
    proc.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    const fail = (why: string): void => {
      this.exited = new Error(`${python}: ${this.stderr.trim().split('\n').pop() || why}`);
      for (const w of this.waiting.splice(0)) w(this.exited);
    };
    proc.on('exit', (code, signal) => fail(`exited (${signal ?? code})`));
    proc.on('error', (e) => fail(e.message));
    // A write to a Python that died is answered by the exit above, not by an unhandled stream error.
    proc.stdin.on('error', () => undefined);
  }

  /** Starts `python` on the bench source and waits for its first line (torch's version and threads). */
  static async start(
    python: string,
    threads: number,
    sizes: DefenseSizes,
    timeoutMs = 120_000,
  ): Promise<{ server: PytorchTwinServer; torch: string; threads: number }> {
    const proc = spawn(python, ['-c', PYTORCH_BENCH_SOURCE, ...twinServerArgs(threads, sizes)], { stdio: 'pipe' });
    const server = new PytorchTwinServer(proc, python);
    try {
      const first = JSON.parse(await server.next(timeoutMs)) as { torch: string; threads: number };
      return { server, torch: first.torch, threads: first.threads };
    } catch (e) {
      server.close();
      throw e;
    }
  }

  private next(timeoutMs: number): Promise<string> {
    const ready = this.lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close();
        reject(new Error(`${this.python}: no answer in ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiting.push((line) => {
        clearTimeout(timer);
        if (line instanceof Error) reject(line);
        else resolve(line);
      });
    });
  }

  /** One timed call of a twin (its first call also sets it up, untimed). Never throws: a failure is the answer. */
  async call(name: TwinName, timeoutMs = 600_000): Promise<TwinCall> {
    try {
      if (this.exited) throw this.exited;
      if (this.proc.stdin.writableEnded) throw new Error(`${this.python}: the twins were closed`);
      this.proc.stdin.write(`${name}\n`);
      return JSON.parse(await this.next(timeoutMs)) as TwinCall;
    } catch (e) {
      return { error: e instanceof Error ? e.message : String(e) };
    }
  }

  close(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.stdin.end();
      this.proc.kill();
    }
  }
}

/** The serving twins as `benchDefenses`' afterCall hook: collects each unit's timed twin calls. */
export interface InterleavedTwins {
  readonly python: string;
  readonly torch: string;
  readonly threads: number;
  readonly afterCall: (unit: TwinName, timed: boolean) => Promise<void>;
  /** Per unit that ran: the median of its timed twin calls (seconds, and work per second), or its first failure. */
  figures(): Record<string, PytorchTwinResult>;
  close(): void;
}

/** Starts the first candidate Python that serves the twins, or says why none did. */
export async function startInterleavedTwins(
  candidates: readonly string[],
  threads: number,
  sizes: DefenseSizes,
): Promise<InterleavedTwins | { readonly error: string }> {
  const errors: string[] = [];
  for (const python of candidates) {
    let started;
    try {
      started = await PytorchTwinServer.start(python, threads, sizes);
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
      continue;
    }
    const { server } = started;
    const calls = new Map<string, { seconds: number[]; work: number; error?: string }>();
    return {
      python,
      torch: started.torch,
      threads: started.threads,
      afterCall: async (defense, timed) => {
        const r = await server.call(defense);
        const entry = calls.get(defense) ?? { seconds: [], work: 0 };
        calls.set(defense, entry);
        if ('error' in r) entry.error ??= r.error;
        else if (timed) {
          entry.seconds.push(r.seconds);
          entry.work = r.work;
        }
      },
      figures: () =>
        Object.fromEntries(
          [...calls].map(([name, c]): [string, PytorchTwinResult] => {
            if (c.error !== undefined || c.seconds.length === 0) return [name, { error: c.error ?? 'no timed call' }];
            const s = [...c.seconds].sort((a, b) => a - b)[Math.floor(c.seconds.length / 2)];
            return [name, { rate: c.work / s, seconds: s }];
          }),
        ),
      close: () => server.close(),
    };
  }
  return { error: `no Python with torch found (${errors.join('; ')})` };
}
