// Which model a state_dict belongs to: from our model file's metadata, or from the key layout.
import { FIXED_ARCHS, InputError, type ModelSpec, type ShapeDict } from '../types';
import { backdoorBenchSpec } from './backdoorbench-layouts';

const SUPPORTED =
  "Supported: WideResNet in the NAD authors' layout (conv1.weight, block1.layer.0.bn1.weight, …, bn1.weight, fc.weight), " +
  "BackdoorBench's CIFAR PreActResNet18 and ResNet-18 (conv1.weight, layer1.0.conv1.weight, …, linear.weight) and VGG-16-BN " +
  "(features.0.weight, …, classifier.weight), and this extension's small CNN, saved as a .safetensors model file that records its spec";

/** The metadata entry our model files keep the spec in. */
export function specMetadata(spec: ModelSpec): Record<string, string> {
  return { spec: JSON.stringify(spec) };
}

function positiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/** Parses and checks the `spec` metadata entry (JSON of a ModelSpec). */
export function parseSpec(json: string, file: string): ModelSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new InputError("the model file's spec metadata is not valid JSON", file);
  }
  const s = (raw ?? {}) as Record<string, unknown>;
  const common = positiveInt(s.numClasses) && positiveInt(s.inChannels) && positiveInt(s.imageSize);
  if (s.arch === 'wrn' && common && positiveInt(s.depth) && positiveInt(s.widen)) {
    return {
      arch: 'wrn',
      depth: s.depth,
      widen: s.widen,
      numClasses: s.numClasses as number,
      inChannels: s.inChannels as number,
      imageSize: s.imageSize as number,
    };
  }
  const fixed = FIXED_ARCHS.find((a) => a === s.arch);
  if (fixed && common) {
    return { arch: fixed, numClasses: s.numClasses as number, inChannels: s.inChannels as number, imageSize: s.imageSize as number };
  }
  if (s.arch === 'cnn' && common) {
    return { arch: 'cnn', numClasses: s.numClasses as number, inChannels: s.inChannels as number, imageSize: s.imageSize as number };
  }
  throw new InputError(`the model file's spec metadata is not a model spec this version knows: ${json.slice(0, 200)}`, file);
}

/** Number of residual blocks in group g (block{g}.layer.{j}.*), or undefined if the indices have gaps. */
function blocksIn(stateDict: ShapeDict, group: number): number | undefined {
  const seen = new Set<number>();
  const pattern = new RegExp(`^block${group}\\.layer\\.(\\d+)\\.`);
  for (const name of stateDict.keys()) {
    const m = pattern.exec(name);
    if (m) seen.add(Number(m[1]));
  }
  for (let j = 0; j < seen.size; j++) if (!seen.has(j)) return undefined;
  return seen.size;
}

/** WideResNet spec from the NAD layout, undefined if the keys are not that layout. */
function wideResNetSpec(sd: ShapeDict, file: string, imageSize: number): ModelSpec | undefined {
  const conv1 = sd.get('conv1.weight');
  const fc = sd.get('fc.weight');
  const first = sd.get('block1.layer.0.conv1.weight');
  if (!conv1 || !fc || !first || !sd.has('bn1.weight')) return undefined;
  const bad = (why: string): never => {
    throw new InputError(`looks like a WideResNet (NAD layout) but ${why}`, file);
  };
  const n = blocksIn(sd, 1);
  if (!n || blocksIn(sd, 2) !== n || blocksIn(sd, 3) !== n) bad('its three groups do not have the same number of blocks');
  if (conv1.shape.length !== 4 || conv1.shape[0] !== 16) bad(`conv1.weight has shape [${conv1.shape.join(', ')}], expected [16, C, 3, 3]`);
  const width = (g: number) => sd.get(`block${g}.layer.0.conv1.weight`)?.shape[0] ?? 0;
  const widen = width(1) / 16;
  if (!Number.isInteger(widen) || widen < 1 || width(2) !== 32 * widen || width(3) !== 64 * widen) {
    bad(`its group widths ${width(1)}, ${width(2)}, ${width(3)} are not 16k, 32k, 64k`);
  }
  if (fc.shape.length !== 2 || fc.shape[1] !== 64 * widen)
    bad(`fc.weight has shape [${fc.shape.join(', ')}], expected [classes, ${64 * widen}]`);
  return { arch: 'wrn', depth: 6 * (n as number) + 4, widen, numClasses: fc.shape[0], inChannels: conv1.shape[1], imageSize };
}

/**
 * The ModelSpec of a state_dict: the `spec` metadata entry when there is one (checked against the keys
 * for a WideResNet), else inferred from a WideResNet key layout. Image size is 32 unless
 * metadata.imageSize says otherwise.
 */
export function inferSpec(stateDict: ShapeDict, file: string, metadata: Record<string, string> = {}): ModelSpec {
  const imageSize = metadata.imageSize !== undefined && /^\d+$/.test(metadata.imageSize) ? Number(metadata.imageSize) : 32;
  const stated = metadata.spec !== undefined ? parseSpec(metadata.spec, file) : undefined;
  const wrn = wideResNetSpec(stateDict, file, stated?.imageSize ?? imageSize);
  if (stated) {
    if (stated.arch === 'wrn' && (!wrn || JSON.stringify(wrn) !== JSON.stringify({ ...wrn, ...stated }))) {
      throw new InputError(`its weights do not match the spec it records (${metadata.spec})`, file);
    }
    return stated;
  }
  if (wrn) return wrn;
  const backdoorBench = backdoorBenchSpec(stateDict, file, metadata.imageSize !== undefined ? imageSize : undefined);
  if (backdoorBench) return backdoorBench;
  const cnn = smallCnnSpec(stateDict);
  if (cnn) return cnn;
  const names = [...stateDict.keys()];
  const shown = names.slice(0, 6).join(', ') + (names.length > 6 ? ', …' : '');
  throw new InputError(
    `does not look like a model this extension supports (keys: ${shown}; ${names.length} tensors in all). ${SUPPORTED}`,
    file,
  );
}

/**
 * The small CNN's layout (conv1..3 3x3 with bn1..3, fc over the flattened last stage, strides 1, 2, 2) saved
 * from PyTorch: the image side follows from fc's input size.
 */
function smallCnnSpec(sd: ShapeDict): ModelSpec | undefined {
  const conv1 = sd.get('conv1.weight');
  const conv3 = sd.get('conv3.weight');
  const fc = sd.get('fc.weight');
  if (!conv1 || !conv3 || !fc || !sd.has('bn3.weight') || sd.has('block1.layer.0.conv1.weight')) return undefined;
  if (conv1.shape.length !== 4 || fc.shape.length !== 2) return undefined;
  const last = Math.sqrt(fc.shape[1] / conv3.shape[0]);
  if (!Number.isInteger(last)) return undefined;
  // Two stride-2 convs divide the side by 4 (rounding up); sides 4k-3..4k all fit, take 4k (28 for MNIST).
  return { arch: 'cnn', numClasses: fc.shape[0], inChannels: conv1.shape[1], imageSize: 4 * last };
}
