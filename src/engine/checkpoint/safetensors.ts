// safetensors: an 8-byte little-endian header length, a JSON header
// ({name: {dtype, shape, data_offsets: [begin, end]}, __metadata__: {string: string}}), then raw
// little-endian data. It is our native model file: names and layouts are PyTorch's, so
// `model.load_state_dict(safetensors.torch.load_file(path))` works there too.
import { InputError, type NamedTensor, type StateDict } from '../types';
import { ELEMENT_SIZE, namedDType, numelOf, toFloat32, type StorageDType } from './dtypes';
import { readCheckpointBytes, writeFileAtomic } from './file';
import type { StorageCheck } from './limit';

export const MODEL_FILE_FORMAT = 'nad-vscode-model';
export const MODEL_FILE_VERSION = '1';

export interface ModelFile {
  readonly stateDict: StateDict;
  /** The header's __metadata__; our files hold `format`, `version` and `spec` (a ModelSpec as JSON). */
  readonly metadata: Record<string, string>;
}

const READ_DTYPES: Readonly<Record<string, StorageDType>> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  U16: 'uint16',
  U32: 'uint32',
  U64: 'uint64',
  BOOL: 'bool',
};

/** Integer tensors keep their type (PyTorch wants num_batches_tracked as int64); all floats are stored as F32. */
const WRITE_DTYPES: Readonly<Record<NamedTensor['dtype'], string>> = {
  float32: 'F32',
  float64: 'F32',
  float16: 'F32',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
};

/** The safetensors reference implementation refuses larger headers too. */
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function headerLength(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  return view.getUint32(4, true) * 4294967296 + view.getUint32(0, true);
}

/** True when the bytes start like a safetensors file (plausible header length, then a JSON object). */
export function looksLikeSafetensors(bytes: Uint8Array): boolean {
  return bytes.length >= 9 && bytes[8] === 0x7b && headerLength(bytes) <= MAX_HEADER_BYTES;
}

function isIntArray(v: unknown, length?: number): v is number[] {
  return Array.isArray(v) && (length === undefined || v.length === length) && v.every((x) => Number.isInteger(x) && x >= 0);
}

/** `check` (see parseTorchCheckpoint) sees the header's tensors and the bytes they declare before any is converted. */
export function parseSafetensors(bytes: Uint8Array, file: string, check?: StorageCheck): ModelFile {
  if (bytes.length === 0) throw new InputError('the file is empty', file);
  if (!looksLikeSafetensors(bytes)) throw new InputError('not a safetensors file', file);
  const length = headerLength(bytes);
  const dataStart = 8 + length;
  if (dataStart > bytes.length) throw new InputError('the file ends inside its safetensors header (truncated?)', file);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (err) {
    throw new InputError(`a damaged safetensors header (${(err as Error).message})`, file);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new InputError('a damaged safetensors header (not a JSON object)', file);

  const metadata: Record<string, string> = {};
  const rawMeta = (header as Record<string, unknown>).__metadata__;
  if (rawMeta !== undefined) {
    if (typeof rawMeta !== 'object' || rawMeta === null)
      throw new InputError('a damaged safetensors header (__metadata__ is not a map)', file);
    for (const [k, v] of Object.entries(rawMeta)) {
      if (typeof v !== 'string') throw new InputError(`a damaged safetensors header (__metadata__.${k} is not a string)`, file);
      metadata[k] = v;
    }
  }

  const entries: { name: string; dtype: StorageDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = (info ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const type = typeof dtype === 'string' && Object.hasOwn(READ_DTYPES, dtype) ? READ_DTYPES[dtype] : undefined;
    if (!type)
      throw new InputError(
        `tensor ${name} has an unsupported dtype ${String(dtype)} (supported: ${Object.keys(READ_DTYPES).join(', ')})`,
        file,
      );
    if (!isIntArray(shape) || !isIntArray(offsets, 2) || offsets[0] > offsets[1])
      throw new InputError(`tensor ${name} has a malformed shape or data_offsets`, file);
    if (offsets[1] - offsets[0] !== numelOf(shape) * ELEMENT_SIZE[type])
      throw new InputError(`tensor ${name}: its data size does not match its shape`, file);
    if (dataStart + offsets[1] > bytes.length) throw new InputError(`the file ends before the data of tensor ${name} (truncated?)`, file);
    entries.push({ name, dtype: type, shape, begin: offsets[0], end: offsets[1] });
  }
  // The data's order is the writer's order (JSON key order may have been sorted).
  entries.sort((a, b) => a.begin - b.begin);
  // Tensors may not share bytes (the format forbids it): else a small file could name one block many times over.
  for (let i = 1; i < entries.length; i++) {
    const [prev, e] = [entries[i - 1], entries[i]];
    if (e.begin < prev.end)
      throw new InputError(
        `tensors ${prev.name} (bytes ${prev.begin}-${prev.end}) and ${e.name} (bytes ${e.begin}-${e.end}) overlap`,
        file,
      );
  }
  check?.(
    new Map(entries.map((e) => [e.name, { shape: e.shape }])),
    entries.reduce((sum, e) => sum + (e.end - e.begin), 0),
    metadata,
  );
  const stateDict: StateDict = new Map();
  for (const e of entries) {
    const data = toFloat32(bytes.subarray(dataStart + e.begin, dataStart + e.end), e.dtype, numelOf(e.shape), true);
    stateDict.set(e.name, { shape: e.shape, dtype: namedDType(e.dtype), data });
  }
  return { stateDict, metadata };
}

function writeTensor(out: DataView, at: number, t: NamedTensor, dtype: string): void {
  const d = t.data;
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN_HOST)
        new Uint8Array(out.buffer, out.byteOffset + at, d.byteLength).set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      else for (let i = 0; i < d.length; i++) out.setFloat32(at + 4 * i, d[i], true);
      break;
    case 'I64':
      for (let i = 0; i < d.length; i++) {
        const v = Math.round(d[i]);
        const hi = Math.floor(v / 4294967296);
        out.setUint32(at + 8 * i, v - hi * 4294967296, true);
        out.setInt32(at + 8 * i + 4, hi, true);
      }
      break;
    case 'I32':
      for (let i = 0; i < d.length; i++) out.setInt32(at + 4 * i, Math.round(d[i]), true);
      break;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < d.length; i++) out.setUint8(at + i, dtype === 'BOOL' ? (d[i] ? 1 : 0) : d[i]);
      break;
    default:
      throw new Error(`cannot write dtype ${dtype}`);
  }
}

const WRITE_SIZE: Readonly<Record<string, number>> = { F32: 4, I64: 8, I32: 4, U8: 1, BOOL: 1 };

/** Encodes a state_dict as safetensors bytes, tensors in the state_dict's order. */
export function encodeSafetensors(stateDict: StateDict, metadata: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const layout: { tensor: NamedTensor; dtype: string; at: number }[] = [];
  let offset = 0;
  for (const [name, tensor] of stateDict) {
    if (numelOf(tensor.shape) !== tensor.data.length) {
      throw new Error(
        `tensor ${name}: shape [${tensor.shape.join(', ')}] needs ${numelOf(tensor.shape)} values, has ${tensor.data.length}`,
      );
    }
    const dtype = WRITE_DTYPES[tensor.dtype];
    const size = tensor.data.length * WRITE_SIZE[dtype];
    header[name] = { dtype, shape: tensor.shape, data_offsets: [offset, offset + size] };
    layout.push({ tensor, dtype, at: offset });
    offset += size;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  const jsonBytes = new TextEncoder().encode(json);
  json += ' '.repeat((8 - (jsonBytes.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerBytes.length % 4294967296, true);
  view.setUint32(4, Math.floor(headerBytes.length / 4294967296), true);
  out.set(headerBytes, 8);
  const data = new DataView(out.buffer, 8 + headerBytes.length);
  for (const { tensor, dtype, at } of layout) writeTensor(data, at, tensor, dtype);
  return out;
}

/**
 * Saves a model in our native format, atomically. `format` and `version` are set here; the caller
 * adds `spec` (JSON of the ModelSpec) and anything else it wants to keep with the weights.
 */
export async function saveModelFile(path: string, stateDict: StateDict, metadata: Record<string, string>): Promise<void> {
  const { format: _f, version: _v, ...rest } = metadata;
  const bytes = encodeSafetensors(stateDict, { format: MODEL_FILE_FORMAT, version: MODEL_FILE_VERSION, ...rest });
  await writeFileAtomic(path, [bytes]);
}

/** Refuses model files of a newer format version than this code writes. */
export function checkModelFileVersion(metadata: Record<string, string>, file: string): void {
  const { format, version } = metadata;
  if (format === MODEL_FILE_FORMAT && version !== MODEL_FILE_VERSION) {
    throw new InputError(
      `model file version ${version ?? '(none)'} is not one this version reads (${MODEL_FILE_VERSION}); update the extension`,
      file,
    );
  }
}

/** Loads a safetensors file (ours or anyone's). */
export async function loadModelFile(path: string): Promise<ModelFile> {
  const file = parseSafetensors(await readCheckpointBytes(path), path);
  checkModelFileVersion(file.metadata, path);
  return file;
}
