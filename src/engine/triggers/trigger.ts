// A trigger bound to an image shape: masks loaded and checked once, then stamped on any number of images.
import { Rng } from '../rng';
import { InputError, type ImageDataset } from '../types';
import { blendPattern, signalMask, trojanMask } from './masks';
import {
  addSinusoid,
  addTrojanMask,
  blendMask,
  blendRandomPixels,
  stampFourCorner,
  stampLcCheckerboard,
  stampGrid,
  stampSinusoid,
  stampSquare,
  warpGrid,
  warpNoise,
  type ImageShape,
} from './patterns';
import { applyWarpPlan, applyWarpPlanMany, warpPlan, warpScratchLength } from './warp-plan';
import { inputAwareStamper } from './input-aware';
import { stampReflection, type ReflectionModel } from './reflection';
import { loadReflectionCandidates } from './reflection-source';
import { PAPER_DEFAULTS, resolveTriggerSpec, type ResolvedTriggerSpec, type TriggerSpec } from './spec';

export interface Trigger {
  readonly spec: ResolvedTriggerSpec;
  readonly shape: ImageShape;
  /**
   * Stamp one uint8 HWC image in place. Only randomPixelTrigger and reflection draw from `rng` (fresh
   * noise or reflection per image, as the papers' code); without one it uses a fixed stream, so previews are stable.
   */
  stamp(image: Uint8Array, rng?: Rng): void;
  /**
   * Stamp `count` consecutive images in place at once, for a trigger that draws no random numbers and runs
   * faster on a batch (inputAware's generators, warp's taps); the same result as `stamp` on each.
   */
  stampMany?(images: Uint8Array, count: number): void;
}

/** Bind a trigger to an image shape; loads and validates its mask (InputError if it does not fit). */
export function createTrigger(spec: TriggerSpec, shape: ImageShape): Trigger {
  const r = resolveTriggerSpec(spec);
  const alpha = r.alpha ?? PAPER_DEFAULTS.alpha;
  const delta = r.delta ?? PAPER_DEFAULTS.sigDelta;
  const frequency = r.frequency ?? PAPER_DEFAULTS.sigFrequency;
  let stamp: (img: Uint8Array, rng?: Rng) => void;
  let stampMany: ((images: Uint8Array, count: number) => void) | undefined;
  switch (r.name) {
    case 'gridTrigger':
      stamp = (img) => stampGrid(img, shape);
      break;
    case 'squareTrigger': {
      const size = r.size ?? PAPER_DEFAULTS.size;
      const distance = r.distance ?? PAPER_DEFAULTS.distance;
      stamp = (img) => stampSquare(img, shape, size, distance);
      break;
    }
    case 'fourCornerTrigger':
      stamp = (img) => stampFourCorner(img, shape);
      break;
    case 'randomPixelTrigger': {
      const scratch = new Uint8Array(shape.height * shape.width);
      let fallback: Rng | undefined;
      stamp = (img, rng) => blendRandomPixels(img, shape, rng ?? (fallback ??= new Rng(0)), alpha, scratch);
      break;
    }
    case 'signalTrigger': {
      const mask = signalMask(shape, r.maskFile, r.maskKey);
      stamp = (img) => blendMask(img, shape, mask, alpha);
      break;
    }
    case 'trojanTrigger': {
      const mask = r.pattern ? trojanPattern(r.pattern, shape) : trojanMask(shape, r.maskFile, r.maskKey);
      stamp = (img) => addTrojanMask(img, shape, mask);
      break;
    }
    case 'blend': {
      const pattern = blendPattern(shape, r.maskFile, r.maskKey, r.patternSeed ?? 0);
      stamp = (img) => blendMask(img, shape, pattern, alpha);
      break;
    }
    case 'sig':
      stamp = (img) => stampSinusoid(img, shape, alpha, delta, frequency);
      break;
    case 'sigAdditive':
      stamp = (img) => addSinusoid(img, shape, delta, frequency);
      break;
    case 'reflection': {
      if (shape.height < 9 || shape.width < 9)
        throw new InputError(
          `the reflection trigger shifts ghosts by up to 8 px: images must be at least 9x9, got ${shape.height}x${shape.width}`,
        );
      const candidates = loadReflectionCandidates(r.reflectionSource ?? '', shape, {
        count: r.reflectionCount ?? 200,
        seed: r.patternSeed ?? 0,
        excludeLabel: r.reflectionExclude,
      });
      const model = (r.reflectionModel ?? 'random') as ReflectionModel;
      let fallback: Rng | undefined;
      stamp = (img, rng) => stampReflection(img, shape, candidates, model, alpha, rng ?? (fallback ??= new Rng(0)));
      break;
    }
    case 'warp': {
      const grid = warpTriggerGrid(r, shape);
      const plan = warpPlan(shape, grid); // the taps once for every image this trigger stamps
      const scratch = new Uint8Array(warpScratchLength(plan));
      stamp = (img) => applyWarpPlan(img, plan, scratch);
      stampMany = (images, count) => applyWarpPlanMany(images, count, plan, scratch);
      break;
    }
    case 'lcCheckerboard': {
      const amplitude = r.amplitude ?? PAPER_DEFAULTS.lcAmplitude;
      if (shape.height < 3 || shape.width < 3)
        throw new InputError(`lcCheckerboard stamps 3x3 corner patches: images must be at least 3x3, got ${shape.height}x${shape.width}`);
      stamp = (img) => stampLcCheckerboard(img, shape, amplitude);
      break;
    }
    case 'inputAware': {
      const many = inputAwareStamper(r.maskFile ?? '', shape);
      stamp = (img) => many(img, 1);
      stampMany = many;
      break;
    }
  }
  const bound = { height: shape.height, width: shape.width, channels: shape.channels };
  return stampMany ? { spec: r, shape: bound, stamp, stampMany } : { spec: r, shape: bound, stamp };
}

/** A trojanTrigger's `pattern` (H x W x C values in 0..255) as its mask; InputError if it does not fit the images. */
function trojanPattern(pattern: readonly number[], shape: ImageShape): Float32Array {
  const n = shape.height * shape.width * shape.channels;
  if (pattern.length !== n)
    throw new InputError(`trigger pattern has ${pattern.length} values, ${shape.height}x${shape.width}x${shape.channels} images need ${n}`);
  if (!pattern.every((v) => Number.isFinite(v) && v >= 0 && v <= 255)) throw new InputError('trigger pattern values must be in [0, 255]');
  return Float32Array.from(pattern);
}

/** The warp trigger's sampling grid (H x W x 2): one fixed WaNet field per patternSeed, so training and test share it. */
export function warpTriggerGrid(spec: TriggerSpec, shape: ImageShape): Float32Array {
  const r = resolveTriggerSpec(spec);
  if (r.name !== 'warp') throw new InputError(`trigger '${r.name}' is not a warp`);
  const k = r.k ?? PAPER_DEFAULTS.warpK;
  const noise = warpNoise(new Rng(r.patternSeed ?? 0), k);
  return warpGrid(noise, k, shape.height, shape.width, r.s ?? PAPER_DEFAULTS.warpStrength, r.gridRescale ?? PAPER_DEFAULTS.gridRescale);
}

function bind(trigger: TriggerSpec | Trigger, shape: ImageShape): Trigger {
  if ('stamp' in trigger) {
    const s = trigger.shape;
    if (s.height !== shape.height || s.width !== shape.width || s.channels !== shape.channels) {
      return createTrigger(trigger.spec, shape);
    }
    return trigger;
  }
  return createTrigger(trigger, shape);
}

/** A stamped copy of one HWC image (e.g. for attention-map previews). */
export function applyTriggerToImage(image: Uint8Array, shape: ImageShape, trigger: TriggerSpec | Trigger, rng?: Rng): Uint8Array {
  const size = shape.height * shape.width * shape.channels;
  if (image.length !== size) throw new RangeError(`image has ${image.length} values, shape needs ${size}`);
  const out = image.slice();
  bind(trigger, shape).stamp(out, rng);
  return out;
}

export interface ApplyOptions {
  /** Only these images (default all); the others are copied unchanged. */
  readonly indices?: ArrayLike<number>;
  /** Seeds randomPixelTrigger's per-image noise. Default 0. */
  readonly seed?: number;
}

/** A copy of the dataset with the trigger stamped on its images; labels unchanged. */
export function applyTrigger(ds: ImageDataset, trigger: TriggerSpec | Trigger, opts: ApplyOptions = {}): ImageDataset {
  const t = bind(trigger, ds);
  const size = ds.height * ds.width * ds.channels;
  const images = ds.images.slice(0, ds.count * size);
  const rng = new Rng(opts.seed ?? 0);
  const count = opts.indices ? opts.indices.length : ds.count;
  if (t.stampMany && !opts.indices) {
    t.stampMany(images, count);
    return { ...ds, images, labels: ds.labels.slice() };
  }
  for (let k = 0; k < count; k++) {
    const i = opts.indices ? opts.indices[k] : k;
    t.stamp(images.subarray(i * size, (i + 1) * size), rng);
  }
  return { ...ds, images, labels: ds.labels.slice() };
}
