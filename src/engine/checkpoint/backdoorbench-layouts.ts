// Recognisers for the state_dict layouts of BackdoorBench's CIFAR models (src/engine/models/resnet.ts,
// vgg.ts): PreActResNet18 (conv1, layer1.0.bn1, ..., linear; no top-level bn1), the CIFAR ResNet-18
// (conv1, bn1, layer1.0.conv1, ..., shortcut.0/1, linear) and VGG-16-BN (features.0 ... features.41,
// classifier). Each derives the spec from key names and shapes; loadStateDict then checks every tensor.
import { InputError, type ModelSpec, type NamedTensor, type ShapeDict } from '../types';

const VGG16_CONVS = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40];

const shapeOf = (t: Pick<NamedTensor, 'shape'> | undefined): string => (t ? `[${t.shape.join(', ')}]` : 'absent');

/** How many distinct blocks j have keys `layer{stage}.{j}.*`. */
function blocksOf(sd: ShapeDict, stage: number): number {
  const seen = new Set<number>();
  const pattern = new RegExp(`^layer${stage}\\.(\\d+)\\.`);
  for (const name of sd.keys()) {
    const m = pattern.exec(name);
    if (m) seen.add(Number(m[1]));
  }
  return seen.size;
}

function resNetSpec(sd: ShapeDict, file: string, imageSize: number): ModelSpec | undefined {
  const conv1 = sd.get('conv1.weight');
  if (!conv1 || !sd.has('layer1.0.conv1.weight')) return undefined;
  const preact = !sd.has('bn1.weight');
  const name = preact ? 'PreAct-ResNet-18' : 'ResNet-18';
  const bad = (why: string): never => {
    throw new InputError(`looks like a ${name} but ${why}`, file);
  };
  if (sd.has('fc.weight') || [...sd.keys()].some((k) => k.includes('.downsample.')))
    bad(
      "its keys are torchvision's ImageNet ResNet (fc, downsample, 7x7 stem); supported is the CIFAR layout (linear, shortcut.0/1, 3x3 stem)",
    );
  if (conv1.shape.length !== 4 || conv1.shape[0] !== 64 || conv1.shape[2] !== 3 || conv1.shape[3] !== 3)
    bad(`conv1.weight has shape ${shapeOf(conv1)}, expected [64, C, 3, 3] (the CIFAR stem)`);
  const blocks = [1, 2, 3, 4, 5].map((s) => blocksOf(sd, s));
  if (blocks.join(',') !== '2,2,2,2,0')
    bad(`its stages layer1..layer4 have ${blocks.slice(0, 4).join(', ')} blocks, expected 2, 2, 2, 2 (ResNet-18)`);
  const widths = [1, 2, 3, 4].map((s) => sd.get(`layer${s}.0.conv2.weight`)?.shape[0] ?? 0);
  if (widths.join(',') !== '64,128,256,512') bad(`its stage widths are ${widths.join(', ')}, expected 64, 128, 256, 512`);
  const linear = sd.get('linear.weight');
  if (!linear || linear.shape.length !== 2 || linear.shape[1] !== 512)
    bad(`linear.weight has shape ${shapeOf(linear)}, expected [classes, 512]`);
  const numClasses = (linear as Pick<NamedTensor, 'shape'>).shape[0];
  return { arch: preact ? 'preact-resnet18' : 'resnet18', numClasses, inChannels: conv1.shape[1], imageSize };
}

function vggSpec(sd: ShapeDict, file: string, statedSize: number | undefined): ModelSpec | undefined {
  const first = sd.get('features.0.weight');
  if (!first || !sd.has('features.1.running_mean')) return undefined;
  const bad = (why: string): never => {
    throw new InputError(`looks like a VGG with batch norm (features.*) but ${why}`, file);
  };
  const convs = [...sd.entries()]
    .filter(([k, t]) => /^features\.\d+\.weight$/.test(k) && t.shape.length === 4)
    .map(([k]) => Number(k.split('.')[1]))
    .sort((a, b) => a - b);
  if (convs.join(',') !== VGG16_CONVS.join(','))
    bad(
      `its ${convs.length} convolutions sit at features.${convs.join(', ')}; supported is VGG-16-BN (13 convolutions at ${VGG16_CONVS.join(', ')})`,
    );
  if (sd.has('classifier.0.weight'))
    bad("it has torchvision's three-layer classifier (classifier.0/3/6); supported is the CIFAR VGG's one linear layer");
  const classifier = sd.get('classifier.weight');
  if (!classifier || classifier.shape.length !== 2) bad(`classifier.weight has shape ${shapeOf(classifier)}, expected [classes, 512]`);
  const [numClasses, inputs] = (classifier as Pick<NamedTensor, 'shape'>).shape;
  // Five 2x2 pools: the classifier reads 512 x (side / 32)^2 values.
  const k = Math.sqrt(inputs / 512);
  if (!Number.isInteger(k) || k < 1) bad(`classifier.weight reads ${inputs} values, not 512 x (side / 32)^2 for a square image`);
  const imageSize = statedSize ?? 32 * k;
  if (imageSize !== 32 * k)
    bad(`its classifier reads ${inputs} values, which fits ${32 * k}x${32 * k} images, not ${imageSize}x${imageSize}`);
  return { arch: 'vgg16-bn', numClasses, inChannels: first.shape[1], imageSize };
}

/**
 * The spec of a BackdoorBench CIFAR model's state_dict, undefined when the keys are not one of these
 * layouts. Image size: `imageSize` if given (metadata), else 32 for the ResNets (global pooling does not
 * tell), VGG's from its classifier's width.
 */
export function backdoorBenchSpec(sd: ShapeDict, file: string, imageSize: number | undefined): ModelSpec | undefined {
  return vggSpec(sd, file, imageSize) ?? resNetSpec(sd, file, imageSize ?? 32);
}
