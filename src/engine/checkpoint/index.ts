// Model weights in and out: PyTorch checkpoints (torch.save, both formats) and our safetensors model
// files, recognised by content rather than by extension.
import { InputError, type ModelSpec, type StateDict } from '../types';
import { readCheckpointBytes } from './file';
import { checkFileSize, storageCheckFor } from './limit';
import { checkModelFileVersion, looksLikeSafetensors, parseSafetensors } from './safetensors';
import { inferSpec } from './spec';
import { isPickle, isZip, parseTorchCheckpoint, type TorchFormat } from './torch';

export type CheckpointFormat = TorchFormat | 'safetensors';

export interface Checkpoint {
  readonly stateDict: StateDict;
  readonly spec: ModelSpec;
  /** safetensors __metadata__, or a torch checkpoint's scalar fields (epoch, best_prec, ...) as strings. */
  readonly metadata: Record<string, string>;
  readonly format: CheckpointFormat;
}

/** The format of a file's bytes, or undefined when it is none we read. */
export function detectCheckpointFormat(bytes: Uint8Array): CheckpointFormat | undefined {
  if (isZip(bytes)) return 'torch-zip';
  if (isPickle(bytes)) return 'torch-legacy';
  if (looksLikeSafetensors(bytes)) return 'safetensors';
  return undefined;
}

function isTar(bytes: Uint8Array): boolean {
  return bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar';
}

/**
 * Reads weights and works out which model they belong to. Every failure is an InputError naming `path`.
 * What the file may make us allocate is bounded by its architecture (limit.ts): `arch` when the caller
 * knows it (the file is then refused by its size before it is read), else the one its tensors describe.
 */
export async function readCheckpoint(path: string, opts: { readonly arch?: ModelSpec } = {}): Promise<Checkpoint> {
  if (opts.arch) await checkFileSize(path, opts.arch);
  const bytes = await readCheckpointBytes(path);
  if (bytes.length === 0) throw new InputError('the file is empty', path);
  const format = detectCheckpointFormat(bytes);
  const check = storageCheckFor(path, opts.arch);
  if (format === 'safetensors') {
    const { stateDict, metadata } = parseSafetensors(bytes, path, check);
    checkModelFileVersion(metadata, path);
    return { stateDict, metadata, format, spec: inferSpec(stateDict, path, metadata) };
  }
  if (format) {
    const { stateDict, metadata } = parseTorchCheckpoint(bytes, path, check);
    // A torch file's scalars (epoch, ...) are not model metadata: infer the spec from the keys alone.
    return { stateDict, metadata, format, spec: inferSpec(stateDict, path) };
  }
  if (isTar(bytes))
    throw new InputError('an old tar-based torch.save file (PyTorch < 0.4); load and re-save it with a recent PyTorch', path);
  throw new InputError('not a PyTorch checkpoint or safetensors model file (its content is neither)', path);
}

export { loadTorchCheckpoint, parseTorchCheckpoint } from './torch';
export type { TorchCheckpoint, TorchFormat } from './torch';
export { MODEL_FILE_FORMAT, MODEL_FILE_VERSION, encodeSafetensors, loadModelFile, parseSafetensors, saveModelFile } from './safetensors';
export type { ModelFile } from './safetensors';
export { inferSpec, parseSpec, specMetadata } from './spec';
export { allocationLimit, storageCheckFor, type StorageCheck } from './limit';
