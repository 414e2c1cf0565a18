// Reads torch.save files into a StateDict: the zip format of torch >= 1.6 (<name>/data.pkl plus one
// entry per storage) and the legacy format (magic, protocol, sys_info and main pickles, then the
// storage key list and each storage's raw bytes after an 8-byte element count).
import { unzipSync, type UnzipFileInfo } from 'fflate';
import { InputError, type NamedTensor, type StateDict } from '../types';
import { ELEMENT_SIZE, gatherStrided, namedDType, numelOf, toFloat32, type StorageDType } from './dtypes';
import { readCheckpointBytes } from './file';
import type { StorageCheck } from './limit';
import { unpickle } from './pickle';
import { StorageRef, TensorRef, type PickleValue } from './values';

export type TorchFormat = 'torch-legacy' | 'torch-zip';

export interface TorchCheckpoint {
  readonly stateDict: StateDict;
  readonly format: TorchFormat;
  /** Scalar fields saved next to the state_dict (e.g. epoch, best_prec), as strings. */
  readonly metadata: Record<string, string>;
}

/** torch.serialization.MAGIC_NUMBER, the first pickle of a legacy file. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
/** Where trainers commonly nest the weights inside a checkpoint dict. */
const CONTAINER_KEYS = ['state_dict', 'model', 'model_state_dict', 'net'];
/** The fixed part of a zip central directory record: no archive holds more entries than its bytes / this. */
const ZIP_CENTRAL_RECORD_BYTES = 46;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/** A pickle of protocol 2-5 starts with PROTO n; legacy torch files are one. */
export function isPickle(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5;
}

/** Reads a PyTorch checkpoint (either format) and returns its state_dict, `module.` prefixes stripped. */
export async function loadTorchCheckpoint(path: string): Promise<StateDict> {
  return parseTorchCheckpoint(await readCheckpointBytes(path), path).stateDict;
}

/**
 * `check`, when given, sees the tensors' names and shapes and the bytes of storage the file declares, after
 * the pickle is read and before any storage is inflated or converted (readCheckpoint: the architecture's limit).
 */
export function parseTorchCheckpoint(bytes: Uint8Array, file: string, check?: StorageCheck): TorchCheckpoint {
  if (bytes.length === 0) throw new InputError('the file is empty', file);
  if (isZip(bytes)) return readZip(bytes, file, check);
  if (isPickle(bytes)) return readLegacy(bytes, file, check);
  throw new InputError('not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy torch.save file)', file);
}

/**
 * torch.save writes every entry of its zip archive stored (method 0, uncompressed): an entry is then a slice of
 * the file and reading it allocates nothing. A compressed entry could inflate to any size (a 2 MB "zip bomb"
 * made 1.5 GB here), so it is refused before anything is inflated, with the numbers.
 */
function checkZipEntry(info: UnzipFileInfo, file: string, fileBytes: number): void {
  if (info.compression !== 0) {
    throw new InputError(
      `zip entry ${info.name} is compressed (method ${info.compression}, ${info.size} bytes declared to expand to ${info.originalSize}); ` +
        'torch.save stores every entry uncompressed, so this file was not written by torch.save (re-save it with torch.save)',
      file,
    );
  }
  if (info.size !== info.originalSize || info.size > fileBytes)
    throw new InputError(`zip entry ${info.name} declares ${info.originalSize} bytes in a ${fileBytes}-byte file`, file);
}

/** A storage entry of torch.save's archive: `<name>/data/<key>`. */
const ZIP_STORAGE = /^([^/]+\/)?data\/[^/]+$/;

function readZip(bytes: Uint8Array, file: string, check?: StorageCheck): TorchCheckpoint {
  let entries: Record<string, Uint8Array>;
  let declaredBytes = 0;
  try {
    // First the listing alone (nothing is inflated), so that the largest offending entry is the one named.
    const listing: UnzipFileInfo[] = [];
    // Each entry takes at least a 46-byte central directory record: a damaged entry count (zip64 allows 2^64)
    // would otherwise have the listing run on far past the end of the file.
    const maxEntries = Math.floor(bytes.length / ZIP_CENTRAL_RECORD_BYTES);
    unzipSync(bytes, {
      filter: (info) => {
        if (listing.push(info) > maxEntries)
          throw new InputError(
            `a damaged zip archive (its directory lists more than ${maxEntries} entries, more than a ${bytes.length}-byte file holds)`,
            file,
          );
        return false;
      },
    });
    for (const info of listing.sort((a, b) => b.originalSize - a.originalSize)) checkZipEntry(info, file, bytes.length);
    for (const info of listing) if (ZIP_STORAGE.test(info.name)) declaredBytes += info.originalSize;
    // With a check, the pickle alone first: the storages are copied out only once the check has passed.
    entries = unzipSync(bytes, check ? { filter: (info) => !ZIP_STORAGE.test(info.name) } : undefined);
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`a damaged or truncated zip archive (${(err as Error).message})`, file);
  }
  // The archive's folder is named after the file it was first saved as, so it varies.
  const pkl = Object.keys(entries).find((name) => /^([^/]+\/)?data\.pkl$/.test(name));
  if (!pkl) {
    throw new InputError('a zip archive, but not a PyTorch checkpoint (no data.pkl inside; torch.save writes <name>/data.pkl)', file);
  }
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const byteorder = entries[`${prefix}byteorder`];
  const littleEndian = !byteorder || new TextDecoder().decode(byteorder).trim() !== 'big';
  const { value } = unpickle(entries[pkl], file);
  if (check) {
    checkStorages(value, file, declaredBytes, check);
    try {
      entries = unzipSync(bytes);
    } catch (err) {
      throw new InputError(`a damaged or truncated zip archive (${(err as Error).message})`, file);
    }
  }
  return toCheckpoint(value, file, 'torch-zip', littleEndian, (key) => entries[`${prefix}data/${key}`], bytes.length);
}

function readLegacy(bytes: Uint8Array, file: string, check?: StorageCheck): TorchCheckpoint {
  const magic = unpickle(bytes, file, 0);
  if (magic.value !== LEGACY_MAGIC) {
    throw new InputError(
      'a Python pickle, but not one written by torch.save; only PyTorch checkpoints and safetensors files can be loaded',
      file,
    );
  }
  const protocol = unpickle(bytes, file, magic.end);
  if (protocol.value !== LEGACY_PROTOCOL) throw new InputError(`unsupported torch.save protocol ${String(protocol.value)}`, file);
  const sysInfo = unpickle(bytes, file, protocol.end);
  const littleEndian = !(sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false);
  const main = unpickle(bytes, file, sysInfo.end);
  const keyList = unpickle(bytes, file, main.end);
  if (!Array.isArray(keyList.value)) throw new InputError('a damaged torch.save file (no storage key list)', file);

  const dtypes = storageTypes(main.value);
  const storages = new Map<string, Uint8Array>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keyList.end;
  let declaredBytes = 0;
  for (const key of keyList.value.map(String)) {
    const dtype = dtypes.get(key);
    if (!dtype) throw new InputError(`a damaged torch.save file (storage ${key} is not used by any tensor)`, file);
    if (pos + 8 > bytes.length) throw truncated(file);
    const count =
      view.getUint32(pos + (littleEndian ? 0 : 4), littleEndian) + view.getUint32(pos + (littleEndian ? 4 : 0), littleEndian) * 4294967296;
    const size = count * ELEMENT_SIZE[dtype];
    if (pos + 8 + size > bytes.length) throw truncated(file);
    storages.set(key, bytes.subarray(pos + 8, pos + 8 + size));
    pos += 8 + size;
    declaredBytes += size;
  }
  if (check) checkStorages(main.value, file, declaredBytes, check);
  return toCheckpoint(main.value, file, 'torch-legacy', littleEndian, (key) => storages.get(key), bytes.length);
}

/** Runs `check` on the state_dict's names and shapes (as toCheckpoint will name them) and the declared storage bytes. */
function checkStorages(root: PickleValue, file: string, declaredBytes: number, check: StorageCheck): void {
  const shapes = new Map<string, { shape: readonly number[] }>();
  for (const [rawName, value] of findStateDict(root, file))
    if (value instanceof TensorRef) shapes.set(String(rawName).replace(/^module\./, ''), { shape: value.shape });
  check(shapes, declaredBytes, {});
}

function truncated(file: string): InputError {
  return new InputError('the file ends before all of its tensor data (truncated, e.g. an incomplete download or copy?)', file);
}

/** Every value below `root`, each once (pickles may share objects). */
function* walk(root: PickleValue): Generator<PickleValue> {
  const seen = new Set<object>();
  const todo: PickleValue[] = [root];
  while (todo.length) {
    const v = todo.pop() as PickleValue;
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    yield v;
    if (Array.isArray(v) || v instanceof Set) for (const x of v) todo.push(x);
    else if (v instanceof Map) for (const [k, x] of v) todo.push(k, x);
  }
}

/** Each storage key's element type, as the tensors over it declare it. */
function storageTypes(root: PickleValue): Map<string, StorageDType> {
  const types = new Map<string, StorageDType>();
  for (const v of walk(root)) if (v instanceof TensorRef) types.set(v.storage.key, v.storage.dtype);
  return types;
}

function hasTensors(v: PickleValue | undefined): v is Map<PickleValue, PickleValue> {
  if (!(v instanceof Map)) return false;
  for (const x of v.values()) if (x instanceof TensorRef) return true;
  return false;
}

function keyList(map: Map<PickleValue, PickleValue>): string {
  const keys = [...map.keys()].map(String);
  return keys.length ? keys.slice(0, 8).join(', ') + (keys.length > 8 ? `, … (${keys.length} in all)` : '') : 'none';
}

/** The dict of tensors: the root itself, or one nested under a usual key. */
function findStateDict(root: PickleValue, file: string): Map<PickleValue, PickleValue> {
  if (root instanceof Map) {
    for (const key of CONTAINER_KEYS) {
      const nested = root.get(key);
      if (hasTensors(nested)) return nested;
    }
    if (hasTensors(root)) return root;
  }
  if (root instanceof TensorRef) throw new InputError('holds a single tensor, not a state_dict (a dict of named tensors)', file);
  const where = root instanceof Map ? ` (top-level keys: ${keyList(root)})` : '';
  for (const v of walk(root)) {
    if (v instanceof TensorRef) {
      throw new InputError(
        `holds tensors but no state_dict: expected a dict of tensors, or one under 'state_dict' or 'model'${where}`,
        file,
      );
    }
  }
  throw new InputError(`a PyTorch file with no tensors in it, so no model weights${where}`, file);
}

function toCheckpoint(
  root: PickleValue,
  file: string,
  format: TorchFormat,
  littleEndian: boolean,
  storageBytes: (key: string) => Uint8Array | undefined,
  fileBytes: number,
): TorchCheckpoint {
  const entries = findStateDict(root, file);
  const converted = new Map<string, Float32Array>();
  const storageData = (ref: StorageRef, dtype: StorageDType): Float32Array => {
    const cacheKey = `${ref.key}:${dtype}`;
    let data = converted.get(cacheKey);
    if (!data) {
      const bytes = storageBytes(ref.key);
      if (!bytes) throw new InputError(`a damaged checkpoint (the data of storage ${ref.key} is missing)`, file);
      data = toFloat32(bytes, dtype, Math.floor(bytes.byteLength / ELEMENT_SIZE[dtype]), littleEndian);
      converted.set(cacheKey, data);
    }
    return data;
  };

  const stateDict: StateDict = new Map();
  let totalElements = 0;
  for (const [rawName, value] of entries) {
    if (!(value instanceof TensorRef)) continue;
    // nn.DataParallel saves every name under `module.`.
    const name = String(rawName).replace(/^module\./, '');
    if (stateDict.has(name)) throw new InputError(`has the tensor ${name} twice (with and without 'module.')`, file);
    // A 2^30-element float32 tensor is 4 GB: beyond anything we train, so a damaged or hostile shape.
    const numel = numelOf(value.shape);
    if (numel > 2 ** 30) throw new InputError(`tensor ${name} claims ${numel} elements, too many to load`, file);
    const storage = storageData(value.storage, value.dtype);
    // A view with zero or overlapping strides could expand a tiny storage into any size: a state_dict tensor
    // never holds more elements than its storage, and all of them together (tied weights share storage)
    // no more than twice the file's bytes, so the float32 copies stay within 8x the file.
    if (numel > storage.length)
      throw new InputError(`tensor ${name} claims ${numel} elements but its storage ${value.storage.key} holds ${storage.length}`, file);
    totalElements += numel;
    if (totalElements > 2 * fileBytes)
      throw new InputError(`its tensors claim ${totalElements} elements in all, more than twice the file's ${fileBytes} bytes`, file);
    const data = gatherStrided(storage, (value.storage.view?.offset ?? 0) + value.offset, value.shape, value.stride);
    if (!data) throw new InputError(`a damaged checkpoint (tensor ${name} reaches outside its storage)`, file);
    const tensor: NamedTensor = { shape: [...value.shape], dtype: namedDType(value.dtype), data };
    stateDict.set(name, tensor);
  }

  const metadata: Record<string, string> = {};
  if (root instanceof Map && root !== entries) {
    for (const [k, v] of root) {
      if (typeof k === 'string' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint')) {
        metadata[k] = String(v);
      }
    }
  }
  return { stateDict, format, metadata };
}
