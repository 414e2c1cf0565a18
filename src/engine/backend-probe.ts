// Which TensorFlow.js backends start on this machine and with which features, for `nad doctor`: each is
// started in turn (as `nad bench` does), so the answer is what a run would really get.
import * as tf from '@tensorflow/tfjs-core';
import { switchBackend, type BackendName } from './backend';
import { relaxedSimdActive } from './kernels/simd';

export interface BackendProbe {
  readonly name: BackendName;
  readonly available: boolean;
  /** As runs record it, e.g. `wasm (SIMD + FMA, 2 threads, NAD kernels on 2 threads)`. */
  readonly description?: string;
  /** Why it did not start. */
  readonly problem?: string;
}

export interface EngineReport {
  readonly tfjs: string;
  readonly backends: readonly BackendProbe[];
  /** wasm's SIMD (undefined when wasm did not start). */
  readonly wasmSimd?: boolean;
  /** Relaxed SIMD (fused multiply-add) for NAD's own kernels. */
  readonly relaxedSimd: boolean;
  /** The backend `auto` picks: the first that started. */
  readonly auto?: BackendName;
}

/** Starts tensorflow (tfjs-node), native, wasm and cpu in turn; the last one that started stays active. */
export async function probeBackends(): Promise<EngineReport> {
  const backends: BackendProbe[] = [];
  let wasmSimd: boolean | undefined;
  for (const name of ['tensorflow', 'native', 'wasm', 'cpu'] as const) {
    try {
      const info = await switchBackend(name);
      if (name === 'wasm') wasmSimd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
      backends.push({ name, available: true, description: info.description });
    } catch (e) {
      backends.push({ name, available: false, problem: (e instanceof Error ? e.message : String(e)).split('\n')[0] });
    }
  }
  return {
    tfjs: tf.version_core,
    backends,
    ...(wasmSimd !== undefined ? { wasmSimd } : {}),
    relaxedSimd: relaxedSimdActive(),
    auto: backends.find((b) => b.available)?.name,
  };
}

/** The report's lines for the doctor's Environment section. */
export function engineLines(r: EngineReport): string[] {
  const lines = [`TensorFlow.js ${r.tfjs}; auto picks ${r.auto ?? 'nothing: no backend starts'}`];
  for (const b of r.backends) lines.push(`  ${b.name.padEnd(10)} ${b.available ? `ok: ${b.description}` : `not available: ${b.problem}`}`);
  const simd = r.wasmSimd === undefined ? 'unknown (wasm did not start)' : r.wasmSimd ? 'yes' : 'no';
  lines.push(`  wasm SIMD ${simd}; relaxed SIMD (FMA) ${r.relaxedSimd ? 'yes' : 'no'}`);
  return lines;
}
