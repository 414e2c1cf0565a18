// The most a checkpoint may make us allocate, derived from the architecture it is for (issue 15): the
// model's parameters and batch-norm buffers as float32, times COPIES, plus SLACK_BYTES. A file whose
// tensor storages declare more is refused with its numbers before any storage is converted; when the
// architecture is known before reading (resuming a run into its model), a file larger than the limit
// is refused before it is read at all.
//
// Why 4 copies: a training checkpoint (.pth.tar) keeps optimizer state beside the weights. SGD with
// momentum adds one buffer per parameter (the NAD authors' WRN-16-1 files: 1.43 MB for 0.70 MB of
// weights), Adam two; weights saved as float64 take two copies' room. 64-bit counters (num_batches_tracked,
// Adam's step), the pickle and the zip directory fit in the slack.
import { stat } from 'node:fs/promises';
import { describeSpec, modelElements } from '../models/size';
import { InputError, type ModelSpec, type ShapeDict } from '../types';
import { inferSpec } from './spec';

export const COPIES = 4;
export const SLACK_BYTES = 256 * 1024;

/** A check of what a file declares, made after its header or pickle is read and before its data is converted. */
export type StorageCheck = (tensors: ShapeDict, declaredBytes: number, metadata: Readonly<Record<string, string>>) => void;

/** The limit for `spec` in bytes, and the model's own float32 bytes it comes from. */
export function allocationLimit(spec: ModelSpec): { limit: number; modelBytes: number } {
  const modelBytes = 4 * modelElements(spec);
  return { limit: COPIES * modelBytes + SLACK_BYTES, modelBytes };
}

function refusal(file: string, what: string, bytes: number, spec: ModelSpec): InputError {
  const { limit, modelBytes } = allocationLimit(spec);
  return new InputError(
    `${what} ${bytes} bytes, over the limit of ${limit} bytes for a ${describeSpec(spec)} (its parameters and buffers are ` +
      `${modelBytes} bytes as float32; the limit allows ${COPIES} times that, for optimizer state saved beside the weights, ` +
      `plus ${SLACK_BYTES / 1024} KiB)`,
    file,
  );
}

/** Refuses `declaredBytes` of tensor storage over the limit of `spec`. */
export function checkDeclaredBytes(declaredBytes: number, spec: ModelSpec, file: string): void {
  if (declaredBytes > allocationLimit(spec).limit) throw refusal(file, 'its tensor storages declare', declaredBytes, spec);
}

/** Refuses a file larger than the limit of `spec` from its size alone, before reading it. */
export async function checkFileSize(file: string, spec: ModelSpec): Promise<void> {
  const size = await stat(file).then(
    (s) => s.size,
    () => undefined, // unreadable: the read that follows names the problem
  );
  if (size !== undefined && size > allocationLimit(spec).limit) throw refusal(file, 'the file has', size, spec);
}

/**
 * The check readCheckpoint makes: against `arch` when the caller knows the architecture, else against
 * the one the tensors' names and shapes (or a model file's recorded spec) say they are.
 */
export function storageCheckFor(file: string, arch?: ModelSpec): StorageCheck {
  return (tensors, declaredBytes, metadata) => checkDeclaredBytes(declaredBytes, arch ?? inferSpec(tensors, file, metadata), file);
}
