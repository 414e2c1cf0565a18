// Element types found in checkpoints, and their conversion to the Float32Array every NamedTensor holds.
import type { NamedTensor } from '../types';

/** Storage element types we can read (PyTorch's names). */
export type StorageDType =
  'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'bool';

export const ELEMENT_SIZE: Readonly<Record<StorageDType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  uint64: 8,
  bool: 1,
};

/**
 * NamedTensor's dtype for a storage type. Its union lacks bfloat16, int16, int8 and the wide unsigned
 * types, so those are reported as the nearest listed type that holds their values.
 */
export function namedDType(dtype: StorageDType): NamedTensor['dtype'] {
  switch (dtype) {
    case 'bfloat16':
      return 'float32';
    case 'int16':
    case 'int8':
    case 'uint16':
      return 'int32';
    case 'uint32':
    case 'uint64':
      return 'int64';
    default:
      return dtype;
  }
}

/** IEEE half-precision bits to a number (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Converts `count` elements starting at `bytes[0]` to float32. `littleEndian` is the file's byte
 * order; the fast paths copy whole blocks when it matches this machine's (always little on x86/ARM).
 */
export function toFloat32(bytes: Uint8Array, dtype: StorageDType, count: number, littleEndian = true): Float32Array {
  const size = ELEMENT_SIZE[dtype];
  if (bytes.byteLength < count * size) throw new RangeError(`need ${count * size} bytes, have ${bytes.byteLength}`);
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * size);
  const le = littleEndian;
  switch (dtype) {
    case 'float32':
      if (le && (bytes.byteOffset & 3) === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
      else for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, le);
      break;
    case 'float64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, le);
      break;
    case 'float16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, le));
      break;
    case 'bfloat16': {
      // bfloat16 is the top half of a float32.
      const word = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < count; i++) {
        word.setUint32(0, view.getUint16(i * 2, le) << 16, true);
        out[i] = word.getFloat32(0, true);
      }
      break;
    }
    case 'int64':
      // Two 32-bit halves: exact up to 2^53, which covers counters and labels.
      for (let i = 0; i < count; i++) {
        const lo = view.getUint32(i * 8 + (le ? 0 : 4), le);
        const hi = view.getInt32(i * 8 + (le ? 4 : 0), le);
        out[i] = hi * 4294967296 + lo;
      }
      break;
    case 'uint64':
      for (let i = 0; i < count; i++) {
        const lo = view.getUint32(i * 8 + (le ? 0 : 4), le);
        out[i] = view.getUint32(i * 8 + (le ? 4 : 0), le) * 4294967296 + lo;
      }
      break;
    case 'int32':
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, le);
      break;
    case 'uint32':
      for (let i = 0; i < count; i++) out[i] = view.getUint32(i * 4, le);
      break;
    case 'uint16':
      for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, le);
      break;
    case 'int16':
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, le);
      break;
    case 'int8':
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      break;
    case 'uint8':
      out.set(bytes.subarray(0, count));
      break;
    case 'bool':
      for (let i = 0; i < count; i++) out[i] = bytes[i] ? 1 : 0;
      break;
    default: {
      const _: never = dtype;
      throw new Error(`unknown dtype ${String(_)}`);
    }
  }
  return out;
}

/** Number of elements of a shape (1 for a scalar). */
export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Gathers a (possibly non-contiguous) view out of a converted storage, in row-major order.
 * Returns undefined when the view reaches outside the storage.
 */
export function gatherStrided(
  storage: Float32Array,
  offset: number,
  shape: readonly number[],
  stride: readonly number[],
): Float32Array | undefined {
  const count = numelOf(shape);
  if (count === 0) return new Float32Array(0);
  let lowest = offset;
  let highest = offset;
  for (let d = 0; d < shape.length; d++) {
    const reach = (shape[d] - 1) * stride[d];
    if (reach < 0) lowest += reach;
    else highest += reach;
  }
  if (lowest < 0 || highest >= storage.length) return undefined;
  let contiguous = true;
  for (let d = shape.length - 1, expect = 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expect) contiguous = false;
    expect *= shape[d];
  }
  if (contiguous) return storage.slice(offset, offset + count);
  // Odometer over the index tuple: no per-element division.
  const out = new Float32Array(count);
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  let pos = offset;
  for (let i = 0; i < count; i++) {
    out[i] = storage[pos];
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      pos += stride[d];
      if (index[d] < shape[d]) break;
      pos -= shape[d] * stride[d];
      index[d] = 0;
    }
  }
  return out;
}
