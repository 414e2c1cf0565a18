// `nad bench`: prints the per-backend table, the defense-unit table and the attack-unit table (or the JSON the performance issue specifies).
import { BACKEND_PREFERENCES, type BackendName } from '../engine/backend';
import { runBenchmark, type AttackBenchRow, type BenchParts, type BenchResult, type DefenseBenchRow } from '../engine/bench';
import { InputError } from '../engine/types';

const f = (v: number | null | undefined, digits = 0): string => (v === null || v === undefined ? '-' : v.toFixed(digits));

/** Rates as whole numbers (2 digits under 100), seconds with 3 significant digits. */
function figure(v: number | null, measure: DefenseBenchRow['measure']): string {
  if (v === null) return '-';
  if (measure === 'seconds') return `${v.toPrecision(3)} s`;
  return f(v, v < 100 ? 2 : 0);
}

function unitRow(name: string, d: Omit<DefenseBenchRow, 'defense'>): string {
  const engine = d.engineError === undefined ? figure(d.engine, d.measure) : `failed (${d.engineError})`;
  const pytorch = d.pytorchError === undefined ? figure(d.pytorch, d.measure) : `not measured (${d.pytorchError})`;
  return `| ${name} | ${d.unit} | ${engine} | ${pytorch} | ${d.ratio === null ? '-' : `${f(d.ratio, 2)}x`} |`;
}

function defenseTable(r: BenchResult): string {
  const rows = r.defenses.map((d) => unitRow(d.defense, d));
  return unitTable(r, 'Defense', 'defense', rows);
}

function attackTable(r: BenchResult): string {
  const rows = r.attacks.map((a: AttackBenchRow) => unitRow(a.attack, a));
  return unitTable(r, 'Attack', 'attack', rows);
}

function unitTable(r: BenchResult, title: string, column: string, rows: readonly string[]): string {
  const torch = r.pytorch && 'torch' in r.pytorch ? `PyTorch ${r.pytorch.torch}, ${r.pytorch.threads} threads` : 'PyTorch';
  return [
    `${title} units on ${r.backend ?? '-'} vs ${torch}, ${cpuLine(r)} (median of timed calls; ratio = this engine's speed / PyTorch's, > 1 is faster)`,
    '',
    `| ${column} | unit | this engine | PyTorch | ratio |`,
    '|---|---|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

/** "2 cores of AMD EPYC (avx, avx2, fma)": every figure is only meaningful beside its CPU. */
function cpuLine(r: BenchResult): string {
  const { cpus, cpuModel, vectorFlags } = r.machine;
  const flags = vectorFlags && vectorFlags.length > 0 ? ` (${vectorFlags.join(', ')})` : '';
  return cpuModel ? `${cpus} cores of ${cpuModel}${flags}` : `${cpus} cores`;
}

function nadTable(r: BenchResult): string {
  const rows = r.backends.map(
    (b) =>
      `| ${b.description ?? b.backend} | ${b.available ? f(b.nadImgPerSec) : `not available (${b.error ?? ''})`} | ${f(b.inferenceImgPerSec)} |`,
  );
  if (r.pytorch && 'torch' in r.pytorch)
    rows.push(
      `| PyTorch ${r.pytorch.torch} CPU, ${r.pytorch.threads} threads | ${f(r.pytorch.nadImgPerSec)} | ${f(r.pytorch.inferenceImgPerSec)} |`,
    );
  else if (r.pytorch) rows.push(`| PyTorch | not measured (${r.pytorch.error}) | - |`);
  else rows.push('| PyTorch | not importable here | - |');
  const ratio = r.ratioToPytorch === null ? '' : `\nbest tfjs backend / PyTorch: ${f(r.ratioToPytorch, 2)}x`;
  return (
    [
      `NAD training step (WRN-16-1, batch 64) and inference (batch 256), ${cpuLine(r)}, Node ${r.machine.node}, tfjs ${r.machine.tfjs}`,
      '',
      '| engine | NAD step img/s | inference img/s |',
      '|---|---:|---:|',
      ...rows,
    ].join('\n') + ratio
  );
}

export function formatBench(r: BenchResult): string {
  const tables: string[] = [];
  if (r.parts === 'nad' || r.parts === 'all') tables.push(nadTable(r));
  if (r.parts === 'defenses' || r.parts === 'all') tables.push(defenseTable(r));
  if (r.parts === 'attacks' || r.parts === 'all') tables.push(attackTable(r));
  return tables.join('\n\n');
}

/** `--backend native,wasm`: the backends to measure, in order (undefined: all). */
export function benchBackendsFlag(flag: string | undefined): BackendName[] | undefined {
  if (flag === undefined) return undefined;
  const names = flag.split(',').map((n) => n.trim());
  const known = BACKEND_PREFERENCES.filter((n): n is BackendName => n !== 'auto');
  for (const n of names)
    if (!known.includes(n as BackendName)) throw new InputError(`bench: --backend: unknown backend '${n}' (use ${known.join(', ')})`);
  return names as BackendName[];
}

export async function runBenchmarkCli(opts: {
  json: boolean;
  steps: number;
  defenseSteps: number;
  only: BenchParts;
  backends?: readonly BackendName[];
}): Promise<void> {
  const t0 = performance.now();
  const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
  const r = await runBenchmark({
    backends: opts.backends,
    steps: opts.steps,
    defenseSteps: opts.defenseSteps,
    parts: opts.only,
    onProgress: (m) => process.stderr.write(`   [${elapsed()}] ${m}\n`),
  });
  process.stderr.write(`   [${elapsed()}] done\n`);
  process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : formatBench(r)) + '\n');
}
