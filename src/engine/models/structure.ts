// Where the layers some defenses work on sit in each architecture, by state-dict name, so that a defense
// asks the model instead of matching names. Fine-Pruning (src/engine/defenses/fine-pruning.ts) prunes the
// channels of the last convolution: through the batch norm whose ReLU'd output the classifier reads where
// there is one, else (the ResNets) by masking the classifier's inputs, as BackdoorBench's fp.py does.
import type { ModelSpec } from '../types';
import { vgg16Layers } from './vgg';

export interface ModelStructure {
  /** The linear classifier (state-dict prefix: `${classifier}.weight`, `${classifier}.bias`). */
  readonly classifier: string;
  /**
   * The last convolution and the batch norm after it whose ReLU'd output, pooled or flattened, is the
   * classifier's input (a channel is 0 for every input once that batch norm's scale and shift are); or,
   * where no weight zeroes the channel the classifier reads, only the convolution and why (`columnsOnly`):
   * a pruned channel is then cut at the classifier's input columns, held at 0 through finetuning.
   */
  readonly lastConv: { readonly conv: string; readonly bn: string } | { readonly conv: string; readonly columnsOnly: string };
}

export function structureOf(spec: ModelSpec): ModelStructure {
  switch (spec.arch) {
    case 'wrn':
      // The last block's conv2 output plus its shortcut, through the final bn1 and ReLU, pooled into fc.
      return { classifier: 'fc', lastConv: { conv: `block3.layer.${(spec.depth - 4) / 6 - 1}.conv2`, bn: 'bn1' } };
    case 'cnn':
      return { classifier: 'fc', lastConv: { conv: 'conv3', bn: 'bn3' } };
    case 'preact-resnet18':
      return {
        classifier: 'linear',
        lastConv: {
          conv: 'layer4.1.conv2',
          columnsOnly:
            "its classifier reads layer4's residual sum (layer4.1.conv2 plus the identity), pooled, with no batch norm after it, so no weight zeroes a channel there",
        },
      };
    case 'resnet18':
      return {
        classifier: 'linear',
        lastConv: {
          conv: 'layer4.1.conv2',
          columnsOnly:
            "its classifier reads relu(layer4.1.bn2 + the identity shortcut), so zeroing layer4.1.bn2's scale and shift leaves the shortcut's channel",
        },
      };
    case 'vgg16-bn': {
      const last = vgg16Layers(spec.inChannels).flat().pop();
      if (!last) throw new Error('VGG-16 has convolutions');
      return { classifier: 'classifier', lastConv: { conv: last.conv, bn: last.bn } };
    }
    default: {
      const unknown: never = spec;
      throw new Error(`no structure for ${JSON.stringify(unknown)}`);
    }
  }
}
