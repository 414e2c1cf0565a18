// Trigger names and options in the paper's vocabulary (config.py: trigger_type, trig_w/trig_h,
// DatasetBD's distance), plus the blend and SIG triggers of the paper's later experiments and WaNet's warp.
import { InputError } from '../types';
import { REFLECTION_MODELS } from './reflection';

/** Canonical names: the paper's `trigger_type` values, then blend, the two SIG variants and WaNet's warp. */
export const TRIGGER_NAMES = [
  'gridTrigger',
  'squareTrigger',
  'fourCornerTrigger',
  'randomPixelTrigger',
  'signalTrigger',
  'trojanTrigger',
  'blend',
  'sig',
  'sigAdditive',
  'warp',
  'reflection',
  'lcCheckerboard',
  'inputAware',
] as const;
export type TriggerName = (typeof TRIGGER_NAMES)[number];

/** Accepted aliases (compared case-insensitively, ignoring `-`, `_` and spaces) -> canonical name. */
const ALIASES: Record<string, TriggerName> = {
  grid: 'gridTrigger',
  square: 'squareTrigger',
  fourcorner: 'fourCornerTrigger',
  randompixel: 'randomPixelTrigger',
  signal: 'signalTrigger',
  trojan: 'trojanTrigger',
  blendtrigger: 'blend',
  sigtrigger: 'sig',
  sinusoidal: 'sig',
  sigadditivetrigger: 'sigAdditive',
  wanet: 'warp',
  warptrigger: 'warp',
  refool: 'reflection',
  lc: 'lcCheckerboard',
  inputawaretrigger: 'inputAware',
};

export type TargetType = 'all2one' | 'all2all' | 'cleanLabel';
export const TARGET_TYPES: readonly TargetType[] = ['all2one', 'all2all', 'cleanLabel'];

/** The paper's defaults (config.py and DatasetBD). */
export const PAPER_DEFAULTS = {
  injectPortion: 0.1,
  targetLabel: 5,
  targetType: 'all2one' as TargetType,
  triggerType: 'gridTrigger' as TriggerName,
  size: 3,
  distance: 1,
  /** alpha of randomPixelTrigger and signalTrigger (hard-coded in data_loader.py), and our blend default. */
  alpha: 0.2,
  /** plant_sin_trigger's amplitude and frequency. */
  sigDelta: 20,
  sigFrequency: 6,
  /** WaNet's warp (BackdoorBench config/attack/wanet/cifar10.yaml): control grid k x k, strength s, grid_rescale. */
  warpK: 4,
  warpStrength: 0.5,
  gridRescale: 1,
  /** The label-consistent attack's checkerboard: reduced_amplitude on a 0..1 scale (BackdoorBench: 1, full). */
  lcAmplitude: 1,
} as const;

export interface TriggerSpec {
  /** Any accepted name: `gridTrigger` or `grid`, `squareTrigger` or `square`, ... (see TRIGGER_NAMES). */
  readonly name: string;
  /** squareTrigger: side of the square (the paper's trig_w = trig_h). Default 3. */
  readonly size?: number;
  /** squareTrigger: gap between the square and the bottom/right edges. Default 1. */
  readonly distance?: number;
  /**
   * signalTrigger, trojanTrigger, blend: a mask file (.npy/.npz; blend also PNG/JPEG) replacing the built-in one;
   * inputAware: the trained generators (trigger.safetensors of the run that trained the attack).
   */
  readonly maskFile?: string;
  /** Array name inside an .npz mask file (default `x`, else its only array). */
  readonly maskKey?: string;
  /** Blend weight of the mask for randomPixelTrigger, signalTrigger, blend; of the image for sig. Default 0.2. */
  readonly alpha?: number;
  /** sig / sigAdditive: amplitude (default 20) and number of periods across the width (default 6). */
  readonly delta?: number;
  readonly frequency?: number;
  /**
   * blend: seed of the built-in random-noise pattern; warp: seed of the random k x k flow field. Fixed per
   * attack, so train and test share it. Default 0.
   */
  readonly patternSeed?: number;
  /** warp: side of the random control grid, WaNet's k. Default 4. */
  readonly k?: number;
  /** warp: strength of the warp, WaNet's s (the flow moves pixels by about s / 2 pixels on average). Default 0.5. */
  readonly s?: number;
  /** warp: WaNet's grid_rescale, the whole sampling grid scaled by it before clamping to [-1, 1]. Default 1. */
  readonly gridRescale?: number;
  /** reflection: where Refool's reflection images come from (a data set, or a folder of PNG/JPEG images). */
  readonly reflectionSource?: string;
  /** reflection: the class of `reflectionSource` left out (the target, when the reflections are the training data's other classes). */
  readonly reflectionExclude?: number;
  /** reflection: how many candidate reflections are picked (seeded by patternSeed). Default 200. */
  readonly reflectionCount?: number;
  /** reflection: random (ghost 49%, else same depth or out of focus), same, blur or ghost. Default random. */
  readonly reflectionModel?: string;
  /** lcCheckerboard: the checkerboard's amplitude on a 0..1 scale, the CL paper's reduced_amplitude. Default 1. */
  readonly amplitude?: number;
  /** trojanTrigger: the values added to the image, H x W x C in 0..255, in place of the mask (an optimised Trojan trigger). */
  readonly pattern?: readonly number[];
}

/** A spec with its canonical name and every option that trigger uses filled in; what a run config records. */
export interface ResolvedTriggerSpec extends TriggerSpec {
  readonly name: TriggerName;
}

const normalise = (s: string): string => s.toLowerCase().replace(/[-_\s]/g, '');

/** Canonical trigger name, or an InputError listing the valid names. */
export function parseTriggerName(name: string): TriggerName {
  const key = normalise(name);
  const exact = TRIGGER_NAMES.find((n) => normalise(n) === key);
  const found = exact ?? ALIASES[key];
  if (!found) {
    const short = ['grid', 'square', 'fourCorner', 'randomPixel', 'signal', 'trojan'];
    throw new InputError(`unknown trigger '${name}'; valid names: ${TRIGGER_NAMES.join(', ')} (or short: ${short.join(', ')})`);
  }
  return found;
}

export function parseTargetType(name: string): TargetType {
  const found = TARGET_TYPES.find((t) => t.toLowerCase() === name.toLowerCase());
  if (!found) throw new InputError(`unknown target type '${name}'; valid: ${TARGET_TYPES.join(', ')}`);
  return found;
}

function checkNumber(value: number, what: string, ok: (v: number) => boolean, range: string): number {
  if (!Number.isFinite(value) || !ok(value)) throw new InputError(`trigger ${what} must be ${range}, got ${value}`);
  return value;
}

/** Canonical name plus the defaults the chosen trigger uses; validates option ranges. */
export function resolveTriggerSpec(spec: TriggerSpec): ResolvedTriggerSpec {
  const name = parseTriggerName(spec.name);
  const d = PAPER_DEFAULTS;
  const int0 = (v: number): boolean => Number.isInteger(v) && v >= 0;
  const unit = (v: number): boolean => v >= 0 && v <= 1;
  const mask = spec.maskFile ? { maskFile: spec.maskFile, ...(spec.maskKey ? { maskKey: spec.maskKey } : {}) } : {};
  switch (name) {
    case 'gridTrigger':
    case 'fourCornerTrigger':
      return { name };
    case 'squareTrigger':
      return {
        name,
        size: checkNumber(spec.size ?? d.size, 'size', (v) => int0(v) && v >= 1, 'a whole number >= 1'),
        distance: checkNumber(spec.distance ?? d.distance, 'distance', int0, 'a whole number >= 0'),
      };
    case 'randomPixelTrigger':
      return { name, alpha: checkNumber(spec.alpha ?? d.alpha, 'alpha', unit, 'in [0, 1]') };
    case 'signalTrigger':
    case 'blend':
      return {
        name,
        alpha: checkNumber(spec.alpha ?? d.alpha, 'alpha', unit, 'in [0, 1]'),
        ...mask,
        ...(name === 'blend' && !spec.maskFile ? { patternSeed: spec.patternSeed ?? 0 } : {}),
      };
    case 'trojanTrigger':
      return { name, ...mask, ...(spec.pattern ? { pattern: spec.pattern } : {}) };
    case 'sig':
    case 'sigAdditive':
      return {
        name,
        ...(name === 'sig' ? { alpha: checkNumber(spec.alpha ?? d.alpha, 'alpha', unit, 'in [0, 1]') } : {}),
        delta: checkNumber(spec.delta ?? d.sigDelta, 'delta', (v) => v >= 0, '>= 0'),
        frequency: checkNumber(spec.frequency ?? d.sigFrequency, 'frequency', (v) => v > 0, '> 0'),
      };
    case 'reflection':
      return resolveReflection(spec);
    case 'warp':
      return {
        name,
        k: checkNumber(spec.k ?? d.warpK, 'k', (v) => int0(v) && v >= 1, 'a whole number >= 1'),
        s: checkNumber(spec.s ?? d.warpStrength, 's', (v) => v >= 0, '>= 0'),
        gridRescale: checkNumber(spec.gridRescale ?? d.gridRescale, 'gridRescale', (v) => v > 0, '> 0'),
        patternSeed: checkNumber(spec.patternSeed ?? 0, 'patternSeed', int0, 'a whole number >= 0'),
      };
    case 'lcCheckerboard':
      return { name, amplitude: checkNumber(spec.amplitude ?? d.lcAmplitude, 'amplitude', unit, 'in [0, 1]') };
    case 'inputAware':
      // The generator file is made by the training run; an attack's declared trigger names none yet.
      return { name, maskFile: spec.maskFile ?? '' };
  }
}

/** The reflection trigger's options (Refool); alpha is the image's weight, alpha_t (negative: random per image). */
function resolveReflection(spec: TriggerSpec): ResolvedTriggerSpec {
  const source = spec.reflectionSource ?? '';
  if (source === '') throw new InputError('trigger reflectionSource is required: a data set, or a folder of PNG/JPEG images');
  const model = spec.reflectionModel ?? 'random';
  if (!(REFLECTION_MODELS as readonly string[]).includes(model))
    throw new InputError(`trigger reflectionModel must be one of ${REFLECTION_MODELS.join(', ')}, got ${model}`);
  const int0 = (v: number): boolean => Number.isInteger(v) && v >= 0;
  return {
    name: 'reflection',
    reflectionSource: source,
    ...(spec.reflectionExclude !== undefined
      ? { reflectionExclude: checkNumber(spec.reflectionExclude, 'reflectionExclude', int0, 'a class index >= 0') }
      : {}),
    reflectionCount: checkNumber(spec.reflectionCount ?? 200, 'reflectionCount', (v) => int0(v) && v >= 1, 'a whole number >= 1'),
    reflectionModel: model,
    alpha: checkNumber(spec.alpha ?? 0.4, 'alpha', (v) => v <= 1, '<= 1 (negative: random per image)'),
    patternSeed: checkNumber(spec.patternSeed ?? 0, 'patternSeed', int0, 'a whole number >= 0'),
  };
}
