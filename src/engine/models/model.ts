// What every architecture's builder returns (src/engine/models/index.ts re-exports these).
import type * as tf from '@tensorflow/tfjs-core';
import type { ModelSpec } from '../types';
import type { ParamSet } from './params';

export interface ForwardResult {
  /**
   * The activations whose attention maps NAD distils, early to late, NHWC: the WRN's three residual groups,
   * the CNN's three stages, the ResNets' layer2..layer4, VGG's blocks 2..4 (docs/adding-an-architecture.md).
   */
  readonly groups: tf.Tensor4D[];
  /** The classifier's input [n, in] (pooled or flattened in PyTorch's order): what Fine-Pruning ranks. */
  readonly features: tf.Tensor2D;
  readonly logits: tf.Tensor2D;
}

export interface Model {
  readonly spec: ModelSpec;
  readonly params: ParamSet;
  /** x: NHWC float32 in [0, 1]. In training mode batch norm uses batch statistics and updates running ones. */
  forward(x: tf.Tensor4D, training: boolean): ForwardResult;
  dispose(): void;
}
