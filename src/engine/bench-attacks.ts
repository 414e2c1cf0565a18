// `nad bench`, attack part: the two attack computations that cost time, each the engine's own code on random
// seeded data, timed like the defense units (bench-defenses.ts's timeUnit: `warmup` untimed calls, then the
// median of `steps` timed ones), each beside its PyTorch twin in pytorch-bench.ts, which reads ATTACK_SIZES:
//  - cl: one L-infinity PGD step of CL (attacks/cl.ts's pgdStep, the step pgdLinf loops over) on the
//    bench's WRN-16-1 as the surrogate, a batch of CL_PGD_BATCH images, BackdoorBench's eps 8/255 and step
//    1.5/255. The iterate carries over from call to call, as in the attack's loop.
//  - wanet: WaNet's warp (triggers/warp-plan.ts's warpPlan + applyWarpPlanMany, which the `warp` trigger's stampMany
//    runs over a test set: bilinear grid sample, align_corners=True, zero padding, uint8 in and out) of a batch of CIFAR-sized
//    images with the field of the attack's defaults (k 4, s 0.5, grid_rescale 1, warpSeed 0). Forward only. The warp
//    runs in the native addon's kernel wherever the addon loads (the label says which), else in JS.
// Turner, Tsipras, Madry: Label-Consistent Backdoor Attacks, 2019; Nguyen, Tran: WaNet, ICLR 2021; the
// reference computations are BackdoorBench's (SCLBD/BackdoorBench resource/label-consistent and attack/wanet.py).
import * as tf from '@tensorflow/tfjs-core';
import { CL_PGD, CL_PGD_BATCH, pgdStep } from './attacks/cl';
import { BENCH_SPEC, timeUnit, type DefenseEngineResult, type PreparedUnit } from './bench-defenses';
import { createModel } from './models';
import { Rng } from './rng';
import { applyWarpPlanMany, warpGrid, warpKernel, warpNoise, warpPlan, warpScratchLength, type ImageShape } from './triggers';
import { PAPER_DEFAULTS } from './triggers/spec';
import { InputError } from './types';

/** Work per call of each attack unit; the PyTorch twins read the same object (`nad bench` passes it). */
export interface AttackSizes {
  /** PGD batch and bounds in [0, 1] units. */
  readonly clBatch: number;
  readonly clEps: number;
  readonly clStep: number;
  /** Images warped per call, and the field: k x k noise (2 x k x k values, torch.rand(1, 2, k, k) * 2 - 1). */
  readonly wanetImages: number;
  readonly wanet: { readonly k: number; readonly s: number; readonly gridRescale: number; readonly noise: readonly number[] };
}

const WANET_K = PAPER_DEFAULTS.warpK;

/** How the wanet unit's label names where the warp ran (the addon's kernel wherever it loads, whatever the backend). */
const WARP_KERNEL_NAMES = { native: 'native addon', js: 'JS' } as const;

/** CL's defaults (BackdoorBench's PGD, batch 64) and 256 images per warp call (an evaluation batch). */
export const ATTACK_SIZES: AttackSizes = {
  clBatch: CL_PGD_BATCH,
  clEps: CL_PGD.eps / 255,
  clStep: CL_PGD.step / 255,
  wanetImages: 256,
  // wanet.ts's warpSeed 0 (the `warp` trigger's patternSeed) draws this field.
  wanet: {
    k: WANET_K,
    s: PAPER_DEFAULTS.warpStrength,
    gridRescale: PAPER_DEFAULTS.gridRescale,
    noise: Array.from(warpNoise(new Rng(0), WANET_K)),
  },
};

export type AttackUnitName = 'cl' | 'wanet';

export interface AttackUnit {
  readonly attack: AttackUnitName;
  /** What one call does with these sizes, and what the figure counts. */
  unit(sizes: AttackSizes): string;
  readonly measure: 'rate';
  prepare(seed: number, sizes: AttackSizes): PreparedUnit;
}

const SIZE = BENCH_SPEC.imageSize;
const SHAPE: ImageShape = { height: SIZE, width: SIZE, channels: 3 };
const PIXELS = SIZE * SIZE * 3;

/** The sampling grid (H x W x 2) of the sizes' field: attacks' warpGrid, as the `warp` trigger builds it. */
export function wanetBenchGrid(s: AttackSizes): Float32Array {
  const w = s.wanet;
  if (w.noise.length !== 2 * w.k * w.k)
    throw new InputError(`bench: wanet.noise has ${w.noise.length} values, k = ${w.k} needs ${2 * w.k * w.k}`);
  return warpGrid(w.noise, w.k, SIZE, SIZE, w.s, w.gridRescale);
}

/** The wanet unit's call: every HWC uint8 image of `images` warped in place with `grid`, as the attack stamps them. */
export function warpBatch(images: Uint8Array, count: number, shape: ImageShape, grid: Float32Array, scratch: Uint8Array): void {
  const plan = warpPlan(shape, grid); // as the `warp` trigger the attack stamps with: the taps once per field
  applyWarpPlanMany(images, count, plan, scratch); // its stampMany: a block of images per pass over the taps
}

export const ATTACK_UNITS: readonly AttackUnit[] = [
  {
    attack: 'cl',
    unit: (s) => `PGD step (pgdStep: input gradient, sign step, projection), batch ${s.clBatch}, img/s`,
    measure: 'rate',
    prepare(seed, s) {
      const model = createModel(BENCH_SPEC, seed);
      const rng = new Rng(seed);
      const n = s.clBatch;
      const x = tf.tensor4d(
        Float32Array.from({ length: n * PIXELS }, () => rng.next()),
        [n, SIZE, SIZE, 3],
      );
      const y = tf.tidy(() =>
        tf.oneHot(
          tf.tensor1d(
            Int32Array.from({ length: n }, (_, i) => i % BENCH_SPEC.numClasses),
            'int32',
          ),
          BENCH_SPEC.numClasses,
        ),
      );
      let adv = tf.clone(x);
      return {
        work: n,
        run: () => {
          const next = pgdStep(model, adv, x, y, { eps: s.clEps, step: s.clStep });
          adv.dispose();
          adv = next.adv;
        },
        dispose: () => {
          tf.dispose([adv, x, y]);
          model.dispose();
        },
      };
    },
  },
  {
    attack: 'wanet',
    unit: (s) =>
      `warp (applyWarpPlanMany, ${WARP_KERNEL_NAMES[warpKernel()]}: bilinear grid sample, align_corners), ${s.wanetImages} images, img/s`,
    measure: 'rate',
    prepare(seed, s) {
      const grid = wanetBenchGrid(s);
      const rng = new Rng(seed);
      const images = Uint8Array.from({ length: s.wanetImages * PIXELS }, () => rng.int(256));
      const scratch = new Uint8Array(warpScratchLength(warpPlan(SHAPE, grid)));
      return {
        work: s.wanetImages,
        run: () => warpBatch(images, s.wanetImages, SHAPE, grid, scratch),
        dispose: () => undefined,
      };
    },
  },
];

export const ATTACK_UNIT_NAMES: readonly AttackUnitName[] = ATTACK_UNITS.map((u) => u.attack);

export interface AttackBenchOptions {
  readonly steps: number;
  readonly warmup: number;
  /** Which units (default all). */
  readonly only?: readonly AttackUnitName[];
  readonly seed?: number;
  /** Default ATTACK_SIZES (tests pass smaller ones). */
  readonly sizes?: AttackSizes;
  readonly onProgress?: (message: string) => void;
  readonly signal?: AbortSignal;
  /** Run after each call (warm-up: timed false), outside its timing: `nad bench` times the PyTorch twin there. */
  readonly afterCall?: (attack: AttackUnitName, timed: boolean) => Promise<void>;
}

export type AttackEngineResult = Omit<DefenseEngineResult, 'defense'> & { readonly attack: AttackUnitName };

/** Times one attack unit on the active backend. */
export async function benchAttackUnit(u: AttackUnit, o: AttackBenchOptions): Promise<AttackEngineResult> {
  const sizes = o.sizes ?? ATTACK_SIZES;
  const base = { attack: u.attack, unit: u.unit(sizes), measure: u.measure };
  const afterCall = o.afterCall;
  return { ...base, ...(await timeUnit(() => u.prepare(o.seed ?? 1, sizes), u.measure, o, afterCall && ((t) => afterCall(u.attack, t)))) };
}

/** Times the chosen attack units, in ATTACK_UNITS order, on the active backend. */
export async function benchAttacks(o: AttackBenchOptions): Promise<AttackEngineResult[]> {
  const out: AttackEngineResult[] = [];
  for (const u of ATTACK_UNITS) {
    if (o.only && !o.only.includes(u.attack)) continue;
    if (o.signal?.aborted) throw new Error('benchmark cancelled');
    o.onProgress?.(`${u.attack}: ${u.unit(o.sizes ?? ATTACK_SIZES)}, ${o.warmup} warm-up + ${o.steps} timed calls`);
    out.push(await benchAttackUnit(u, o));
  }
  return out;
}
