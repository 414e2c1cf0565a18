// What an architecture holds, without building it (no tfjs here, so the checkpoint readers can use it
// before they allocate anything): its name as users read it, and the elements of its state_dict.
import type { FixedArch, ModelSpec } from '../types';

export const FIXED_NAMES: Record<FixedArch, string> = {
  'preact-resnet18': 'PreAct-ResNet-18',
  resnet18: 'ResNet-18',
  'vgg16-bn': 'VGG-16-BN',
};

export function describeSpec(spec: ModelSpec): string {
  if (spec.arch === 'wrn') return `WRN-${spec.depth}-${spec.widen}`;
  return spec.arch === 'cnn' ? `CNN (${spec.imageSize}x${spec.imageSize}x${spec.inChannels})` : FIXED_NAMES[spec.arch];
}

const conv = (k: number, cin: number, cout: number): number => k * k * cin * cout;
/** weight, bias, running_mean, running_var (PyTorch's int64 num_batches_tracked is not counted). */
const batchNorm = (c: number): number => 4 * c;
const linear = (inF: number, outF: number): number => inF * outF + outF;

/** Widths of ResNet-18's four stages of two blocks (src/engine/models/resnet.ts). */
const RESNET18_WIDTHS = [64, 128, 256, 512];
/** VGG-16's convolution widths, block by block (src/engine/models/vgg.ts). */
const VGG16_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512];

/** The ResNet-18 blocks' elements; `preact` puts each block's first batch norm on its input, else on its output. */
function resnet18Blocks(preact: boolean): number {
  let total = 0;
  let cin = 64;
  RESNET18_WIDTHS.forEach((cout, s) => {
    for (let j = 0; j < 2; j++) {
      const projection = (j === 0 && s > 0) || cin !== cout;
      total += batchNorm(preact ? cin : cout) + conv(3, cin, cout) + batchNorm(cout) + conv(3, cout, cout);
      if (projection) total += conv(1, cin, cout) + (preact ? 0 : batchNorm(cout));
      cin = cout;
    }
  });
  return total;
}

/**
 * Elements of the state_dict of a model of `spec`: its parameters and batch-norm buffers, as the model
 * builders in this folder create them (test/unit/checkpoint-limit.test.ts holds the two together).
 */
export function modelElements(spec: ModelSpec): number {
  switch (spec.arch) {
    case 'wrn': {
      const n = (spec.depth - 4) / 6;
      const widths = [16, 16 * spec.widen, 32 * spec.widen, 64 * spec.widen];
      let total = conv(3, spec.inChannels, 16);
      for (let g = 0; g < 3; g++) {
        for (let j = 0; j < n; j++) {
          const cin = j === 0 ? widths[g] : widths[g + 1];
          const cout = widths[g + 1];
          total += batchNorm(cin) + conv(3, cin, cout) + batchNorm(cout) + conv(3, cout, cout) + (cin !== cout ? conv(1, cin, cout) : 0);
        }
      }
      return total + batchNorm(widths[3]) + linear(widths[3], spec.numClasses);
    }
    case 'cnn': {
      const widths = [spec.inChannels, 32, 64, 64];
      let side = spec.imageSize;
      let total = 0;
      [1, 2, 2].forEach((stride, i) => {
        total += conv(3, widths[i], widths[i + 1]) + batchNorm(widths[i + 1]);
        side = Math.floor((side + 2 - 3) / stride) + 1;
      });
      return total + linear(side * side * widths[3], spec.numClasses);
    }
    case 'preact-resnet18':
      return conv(3, spec.inChannels, 64) + resnet18Blocks(true) + linear(512, spec.numClasses);
    case 'resnet18':
      return conv(3, spec.inChannels, 64) + batchNorm(64) + resnet18Blocks(false) + linear(512, spec.numClasses);
    case 'vgg16-bn': {
      let cin = spec.inChannels;
      let total = 0;
      for (const cout of VGG16_WIDTHS) {
        total += conv(3, cin, cout) + cout + batchNorm(cout);
        cin = cout;
      }
      const side = spec.imageSize / 32;
      return total + linear(512 * side * side, spec.numClasses);
    }
    default: {
      const unknown: never = spec;
      return unknown;
    }
  }
}
