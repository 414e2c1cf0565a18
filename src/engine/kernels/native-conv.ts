// The native backend's Conv2D: the convolutions our Winograd kernel does not take (strided, 1x1, the
// 3-colour input layer, the phases of the stride-2 input gradient) by the addon's direct convolution
// at the CPU's vector width, instead of tfjs-wasm's XNNPACK (128-bit), and those with fewer output
// channels than the vector width at stride 1 (the input layer's input gradient, 3 channels out) by its
// row vectors (conv_narrow.c). Cases it does not cover (NCHW, dilation, unequal strides, other output
// channel counts, the portable build) run tfjs-wasm's own Conv2D, as on wasm.
import * as tf from '@tensorflow/tfjs-core';
import { nativeKernelsOn } from './simd';
import type { WasmBackendView } from './simd-interfaces';

interface Conv2DAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Replaces the `native` backend's Conv2D (a copy of wasm's, which it keeps as the fallback). */
export function registerNativeConv2D(): void {
  const stock = tf.getKernel('Conv2D', 'wasm');
  if (!stock) throw new Error('tfjs-wasm has no Conv2D kernel');
  if (tf.getKernel('Conv2D', 'native')) tf.unregisterKernel('Conv2D', 'native');
  tf.registerKernel({
    ...stock,
    backendName: 'native',
    kernelFunc: (args) => {
      const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
      const a = args.attrs as unknown as Conv2DAttrs;
      const b = args.backend as unknown as WasmBackendView;
      const addon = nativeKernelsOn(b);
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filter.shape as [number, number, number, number],
        a.strides,
        a.dilations,
        a.pad,
        a.dimRoundingMode,
        false,
        a.dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast',
      );
      const direct =
        addon.isa !== 'portable' &&
        info.dataFormat === 'channelsLast' &&
        info.dilationHeight === 1 &&
        info.dilationWidth === 1 &&
        info.strideHeight === info.strideWidth &&
        (info.outChannels % addon.convVectorWidth === 0 ||
          (info.outChannels < addon.convVectorWidth && info.strideHeight === 1 && addon.conv2dNarrow === true)) &&
        x.dtype === 'float32' &&
        filter.dtype === 'float32';
      if (!direct) return stock.kernelFunc(args);
      const y = b.makeOutput([info.batchSize, info.outHeight, info.outWidth, info.outChannels], 'float32');
      const p = (t: tf.TensorInfo) => b.dataIdMap.get(t.dataId).memoryOffset;
      // makeOutput may have grown the heap: point the addon at its buffer again before the call.
      nativeKernelsOn(b).conv2d(
        p(x),
        info.batchSize,
        info.inHeight,
        info.inWidth,
        info.inChannels,
        p(filter),
        info.filterHeight,
        info.filterWidth,
        info.outChannels,
        info.strideHeight,
        info.padInfo.top,
        info.padInfo.left,
        info.outHeight,
        info.outWidth,
        p(y),
      );
      return y;
    },
  });
}
