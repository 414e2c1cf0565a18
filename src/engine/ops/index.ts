// The few differentiable building blocks the models are made of. Models call these, never tf.conv2d
// or tf.batchNorm directly, so that faster implementations (custom gradients, fused kernels) can be
// swapped in here without touching model code.
// The models' other ops (relu, add, matMul, ...) need tfjs's stock gradients registered.
import '@tensorflow/tfjs-core/dist/register_all_gradients';

export { conv2d, bnReluConv3x3Eval, bnReluConv3x3EvalGrad, bnReluConv3x3Train } from './conv';
export type { BnReluConvTrainResult } from './conv';
export { exactSign } from './sign';
export { batchNormTrain, batchNormEval, batchNormReluTrain, batchNormReluEval } from './batchnorm';
export type { BatchNormParams, BatchNormTrainResult } from './batchnorm';
