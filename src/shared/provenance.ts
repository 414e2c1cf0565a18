// What made a run (config.json's `provenance`), as the run layer records it and the history shows it.
// Runs made before it was recorded have none: every reader treats a missing field as "unknown".

export interface ProvenanceInput {
  /** What the file is to the run: data, test, model, student, teacher, param <key>... */
  readonly role: string;
  readonly path: string;
  /** Hex SHA-256 of the file (of a folder: over each file's relative path and contents), or why there is none. */
  readonly sha256: string;
  readonly bytes: number;
  /** Files in a folder. */
  readonly files?: number;
}

/** The native kernels' addon a run computed with (backend `native` only): the file's hash, the instruction set it picked, its threads. */
export interface NativeAddonProvenance {
  /** The .node file as loaded. */
  readonly file: string;
  /** Hex SHA-256 of that file. */
  readonly sha256: string;
  /** avx512, avx2 or portable. */
  readonly isa: string;
  /** The addon's own threads for the kernels. */
  readonly threads: number;
}

export interface Provenance {
  /** The extension's / CLI's package version. */
  readonly version: string;
  /** The TensorFlow.js backend as it ran (e.g. "wasm (SIMD + FMA, 2 threads, NAD kernels on 2 threads)"). */
  readonly backend: string;
  /** Hash of the native kernels' C sources the wasm binary was built from. */
  readonly kernels: string;
  readonly node: string;
  readonly tfjs: string;
  readonly platform: string;
  readonly cpu: string;
  /** On the native backend: which addon ran (absent on the other backends and in older runs). */
  readonly addon?: NativeAddonProvenance;
  readonly inputs: readonly ProvenanceInput[];
}

export const UNKNOWN = 'unknown';

/** A run's provenance fields for display, "unknown" where an older run has none. */
export function provenanceFacts(value: unknown): Array<readonly [string, string]> {
  const p = (typeof value === 'object' && value !== null ? value : {}) as Partial<Record<keyof Provenance, unknown>>;
  const str = (v: unknown): string => (typeof v === 'string' && v ? v : UNKNOWN);
  const facts: Array<readonly [string, string]> = [
    ['Version', str(p.version)],
    ['Engine', str(p.backend)],
    ['Kernels', str(p.kernels)],
    ['Node', str(p.node)],
    ['tfjs', str(p.tfjs)],
    ['Platform', str(p.platform)],
    ['CPU', str(p.cpu)],
  ];
  if (typeof p.addon === 'object' && p.addon !== null) {
    const a = p.addon as Partial<Record<keyof NativeAddonProvenance, unknown>>;
    const threads = typeof a.threads === 'number' ? String(a.threads) : UNKNOWN;
    facts.push(['Native addon', `${str(a.isa)}, ${threads} threads, SHA-256 ${str(a.sha256)} (${str(a.file)})`]);
  }
  const inputs = Array.isArray(p.inputs) ? (p.inputs as Array<Partial<ProvenanceInput>>) : [];
  for (const i of inputs) facts.push([`SHA-256 ${str(i.role)}`, `${str(i.sha256)} (${str(i.path)})`]);
  return facts;
}
