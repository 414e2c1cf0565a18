// Plain value types shared by the engine's modules, the CLI, the worker and the tests.

/** Images as NAD's PyTorch code holds them: uint8, N x H x W x C, row-major (HWC per image). */
export interface ImageDataset {
  readonly images: Uint8Array;
  /** One class index per image, 0..numClasses-1. */
  readonly labels: Int32Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly numClasses: number;
  readonly classNames?: readonly string[];
  /** Where it came from (a path, or `mnist` for the embedded package), for messages and run configs. */
  readonly source: string;
}

/** A tensor in PyTorch layout (e.g. conv weights OIHW, linear weights [out, in]), as read from a checkpoint. */
export interface NamedTensor {
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'int64' | 'int32' | 'float64' | 'float16' | 'uint8' | 'bool';
  /** Values converted to float32 (int64 counters such as num_batches_tracked are converted too). */
  readonly data: Float32Array;
}

/** A PyTorch state_dict: parameter name (e.g. `block1.layer.0.conv1.weight`) to tensor. Insertion order kept. */
export type StateDict = Map<string, NamedTensor>;

/** What the model's spec is inferred from before any tensor data is read: names and shapes (a StateDict is one). */
export type ShapeDict = ReadonlyMap<string, Pick<NamedTensor, 'shape'>>;

/** BackdoorBench's fixed-width CIFAR architectures, by the names `--arch` and config files use. */
export const FIXED_ARCHS = ['preact-resnet18', 'resnet18', 'vgg16-bn'] as const;
export type FixedArch = (typeof FIXED_ARCHS)[number];

export type ModelSpec =
  | {
      readonly arch: 'wrn';
      readonly depth: number;
      readonly widen: number;
      readonly numClasses: number;
      readonly inChannels: number;
      readonly imageSize: number;
    }
  | {
      /** Small CNN for 28x28 grayscale data (MNIST, Fashion-MNIST). */
      readonly arch: 'cnn';
      readonly numClasses: number;
      readonly inChannels: number;
      readonly imageSize: number;
    }
  | {
      /**
       * BackdoorBench's CIFAR networks (src/engine/models/resnet.ts, vgg.ts): PreActResNet18 (its default),
       * the CIFAR ResNet-18 (3x3 stem, no max pool) and VGG-16 with batch norm; fixed widths.
       */
      readonly arch: FixedArch;
      readonly numClasses: number;
      readonly inChannels: number;
      readonly imageSize: number;
    };

/** An error about user input: names the file (or option) and the problem; the CLI prints it without a stack. */
export class InputError extends Error {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'InputError';
  }
}
