// The CPU a figure was measured on: its model and the vector instruction sets it reports. Speed figures
// mean little without them (the same code runs 2-4x apart on AVX2 and AVX-512 machines), so `nad bench`
// prints them beside its tables and `nad doctor` in its report.
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface CpuFacts {
  readonly cpuModel: string;
  /** Vector instruction sets the CPU reports (Linux: /proc/cpuinfo flags; elsewhere unknown, empty). */
  readonly vectorFlags: readonly string[];
}

const VECTOR_FLAGS = [
  'sse4_1',
  'sse4_2',
  'avx',
  'avx2',
  'fma',
  'avx512f',
  'avx512bw',
  'avx512_vnni',
  'avx512_bf16',
  'amx_tile',
  'asimd',
  'sve',
];

export function cpuFacts(): CpuFacts {
  let cpuModel = os.cpus()[0]?.model.trim() || 'unknown';
  let vectorFlags: string[] = [];
  if (process.platform === 'linux') {
    try {
      const info = readFileSync('/proc/cpuinfo', 'utf8');
      cpuModel = /^model name\s*:\s*(.+)$/m.exec(info)?.[1].trim() ?? cpuModel;
      // x86 says "flags", ARM says "Features".
      const line = /^(?:flags|Features)\s*:\s*(.+)$/m.exec(info)?.[1].split(/\s+/) ?? [];
      vectorFlags = VECTOR_FLAGS.filter((f) => line.includes(f));
    } catch {
      // no /proc: keep os.cpus()'s model
    }
  }
  return { cpuModel, vectorFlags };
}
