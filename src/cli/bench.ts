// `nad bench`: prints the per-backend table (or the JSON the performance issue specifies).
import { runBenchmark, type BenchResult } from '../engine/bench';

const f = (v: number | null | undefined, digits = 0): string => (v === null || v === undefined ? '-' : v.toFixed(digits));

export function formatBench(r: BenchResult): string {
  const rows = r.backends.map(
    (b) =>
      `| ${b.description ?? b.backend} | ${b.available ? f(b.nadImgPerSec) : `not available (${b.error ?? ''})`} | ${f(b.inferenceImgPerSec)} |`,
  );
  if (r.pytorch && 'nadImgPerSec' in r.pytorch)
    rows.push(
      `| PyTorch ${r.pytorch.torch} CPU, ${r.pytorch.threads} threads | ${f(r.pytorch.nadImgPerSec)} | ${f(r.pytorch.inferenceImgPerSec)} |`,
    );
  else if (r.pytorch) rows.push(`| PyTorch | not measured (${r.pytorch.error}) | - |`);
  else rows.push('| PyTorch | not importable here | - |');
  const ratio = r.ratioToPytorch === null ? '' : `\nbest tfjs backend / PyTorch: ${f(r.ratioToPytorch, 2)}x`;
  return (
    [
      `NAD training step (WRN-16-1, batch 64) and inference (batch 256), ${r.machine.cpus} cores, Node ${r.machine.node}, tfjs ${r.machine.tfjs}`,
      '',
      '| engine | NAD step img/s | inference img/s |',
      '|---|---:|---:|',
      ...rows,
    ].join('\n') + ratio
  );
}

export async function runBenchmarkCli(opts: { json: boolean; steps: number }): Promise<void> {
  const r = await runBenchmark({ steps: opts.steps, onProgress: (m) => process.stderr.write(`   ${m}\n`) });
  process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : formatBench(r)) + '\n');
}
