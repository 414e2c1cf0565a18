// NumPy .npy (format versions 1, 2, 3) and .npz readers, so users can bring their own trigger masks
// and the paper's own mask files load through the same code as the embedded copies.
import { unzipSync } from 'fflate';
import { InputError } from '../types';
import { readBytes } from './files';

export type NpyDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'float32' | 'float64' | 'bool';

export interface NpyArray {
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  /** Values in C (row-major) order, whatever the file's order. int64 becomes float64 (exact to 2^53); bool is 0/1. */
  readonly data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** The most an .npz may make us inflate (trigger masks and patterns are kilobytes). */
export const MAX_NPZ_BYTES = 2 ** 30;
/** Deflate expands at most 1032:1; a member declaring more is damaged or hostile. */
const DEFLATE_MAX_RATIO = 1032;
/** A zip central directory record takes at least 46 bytes. */
const ZIP_CENTRAL_RECORD_BYTES = 46;

/** dtype descr (as numpy writes it) -> our dtype and item size. Only little-endian and byte-sized types. */
const DESCRS: Record<string, { dtype: NpyDtype; size: number }> = {
  '|u1': { dtype: 'uint8', size: 1 },
  '<u1': { dtype: 'uint8', size: 1 },
  u1: { dtype: 'uint8', size: 1 },
  '|i1': { dtype: 'int8', size: 1 },
  '<i1': { dtype: 'int8', size: 1 },
  i1: { dtype: 'int8', size: 1 },
  '<i2': { dtype: 'int16', size: 2 },
  '<i4': { dtype: 'int32', size: 4 },
  '<i8': { dtype: 'int64', size: 8 },
  '<f4': { dtype: 'float32', size: 4 },
  '<f8': { dtype: 'float64', size: 8 },
  '|b1': { dtype: 'bool', size: 1 },
  b1: { dtype: 'bool', size: 1 },
};

/** Parse .npy bytes. `file` names the source in errors. */
export function parseNpy(bytes: Uint8Array, file: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new InputError('not a NumPy .npy file (missing the \\x93NUMPY magic)', file);
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new InputError('truncated .npy header', file);
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new InputError(`unsupported .npy format version ${major}.${bytes[7]} (supported: 1, 2, 3)`, file);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) throw new InputError('truncated .npy header', file);
  // Versions 1 and 2 store the header as latin1, version 3 as utf8; the keys we read are ASCII either way.
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new InputError(`malformed .npy header: ${header.trim()}`, file);
  }
  const type = DESCRS[descr];
  if (!type) {
    throw new InputError(`unsupported .npy dtype '${descr}' (supported: u1, i1, <i2, <i4, <i8, <f4, <f8, bool; little-endian only)`, file);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new InputError(`malformed .npy shape (${shapeText})`, file);
  const count = shape.reduce((a, b) => a * b, 1);
  const need = count * type.size;
  if (need > MAX_NPZ_BYTES)
    throw new InputError(`.npy shape (${shape.join(', ')}) of ${descr} needs ${need} bytes, over the limit of ${MAX_NPZ_BYTES}`, file);
  if (bytes.length - dataStart < need) {
    throw new InputError(`.npy data is ${bytes.length - dataStart} bytes but shape (${shape.join(', ')}) of ${descr} needs ${need}`, file);
  }
  const flat = decodeValues(view, dataStart, count, type.dtype);
  const data = fortran === 'True' && shape.length > 1 ? fortranToC(flat, shape) : flat;
  return { dtype: type.dtype, shape, data };
}

function decodeValues(view: DataView, start: number, count: number, dtype: NpyDtype): NpyArray['data'] {
  // DataView reads: the data may sit at any byte offset of a pooled Buffer, and stays correct on any host endianness.
  switch (dtype) {
    case 'uint8':
    case 'bool': {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getUint8(start + i);
      if (dtype === 'bool') for (let i = 0; i < count; i++) out[i] = out[i] ? 1 : 0;
      return out;
    }
    case 'int8': {
      const out = new Int8Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt8(start + i);
      return out;
    }
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(start + 2 * i, true);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(start + 4 * i, true);
      return out;
    }
    case 'int64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(start + 8 * i, true));
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(start + 4 * i, true);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(start + 8 * i, true);
      return out;
    }
  }
}

/** Fortran order stores the first index fastest; reorder so the last index is fastest. */
function fortranToC<T extends NpyArray['data']>(src: T, shape: readonly number[]): T {
  const out = src.slice() as T;
  const n = shape.length;
  const cStride = new Array<number>(n);
  const fStride = new Array<number>(n);
  cStride[n - 1] = 1;
  for (let d = n - 2; d >= 0; d--) cStride[d] = cStride[d + 1] * shape[d + 1];
  fStride[0] = 1;
  for (let d = 1; d < n; d++) fStride[d] = fStride[d - 1] * shape[d - 1];
  const idx = new Array<number>(n).fill(0);
  for (let c = 0; c < src.length; c++) {
    let f = 0;
    for (let d = 0; d < n; d++) f += idx[d] * fStride[d];
    out[c] = src[f];
    for (let d = n - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Parse .npz bytes (a zip of .npy members, stored or deflated): member name without `.npy` -> array. */
export function parseNpz(bytes: Uint8Array, file: string): Map<string, NpyArray> {
  let members: Record<string, Uint8Array>;
  try {
    // The directory first, nothing inflated: entry count, compression and declared sizes are checked
    // against the file before any member is allocated (numpy.savez stores, savez_compressed deflates).
    const maxEntries = Math.floor(bytes.length / ZIP_CENTRAL_RECORD_BYTES);
    let entries = 0;
    let declared = 0;
    unzipSync(bytes, {
      filter: (info) => {
        if (++entries > maxEntries)
          throw new InputError(
            `a damaged .npz: its directory lists more than ${maxEntries} entries, more than a ${bytes.length}-byte file holds`,
            file,
          );
        if (info.compression !== 0 && info.compression !== 8)
          throw new InputError(
            `.npz member ${info.name} uses compression method ${info.compression} (numpy writes 0, stored, or 8, deflate)`,
            file,
          );
        const most = info.compression === 0 ? info.size : DEFLATE_MAX_RATIO * info.size + 1024;
        declared += info.originalSize;
        if (info.originalSize > most || info.size > bytes.length || declared > MAX_NPZ_BYTES)
          throw new InputError(
            `.npz member ${info.name} declares ${info.originalSize} bytes from ${info.size} compressed in a ${bytes.length}-byte file` +
              ` (at most ${Math.min(most, MAX_NPZ_BYTES)}; ${declared} declared so far, limit ${MAX_NPZ_BYTES})`,
            file,
          );
        return false;
      },
    });
    members = unzipSync(bytes);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`not a readable .npz (zip) file: ${e instanceof Error ? e.message : String(e)}`, file);
  }
  const out = new Map<string, NpyArray>();
  for (const [name, data] of Object.entries(members)) {
    if (!name.endsWith('.npy')) continue;
    out.set(name.slice(0, -4), parseNpy(data, `${file}:${name}`));
  }
  if (out.size === 0) throw new InputError('the .npz archive holds no .npy arrays', file);
  return out;
}

export function readNpy(path: string): NpyArray {
  return parseNpy(readBytes(path), path);
}

export function readNpz(path: string): Map<string, NpyArray> {
  return parseNpz(readBytes(path), path);
}

/**
 * One array from a .npy file, or from a .npz file (`key`, else `x` as the paper's trojan file names it,
 * else its only array). Detected by content, not by extension.
 */
export function readArrayFile(path: string, key?: string): NpyArray {
  const bytes = readBytes(path);
  if (bytes[0] === 0x93) return parseNpy(bytes, path);
  if (bytes[0] !== 0x50 || bytes[1] !== 0x4b) throw new InputError('neither a .npy nor a .npz file', path);
  const arrays = parseNpz(bytes, path);
  const names = [...arrays.keys()];
  const chosen = key ?? (arrays.has('x') ? 'x' : names.length === 1 ? names[0] : undefined);
  const arr = chosen === undefined ? undefined : arrays.get(chosen);
  if (!arr) {
    throw new InputError(`choose an array: ${key ? `no array '${key}'; ` : ''}the archive holds ${names.join(', ')}`, path);
  }
  return arr;
}
