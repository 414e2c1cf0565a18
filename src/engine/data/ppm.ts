// Binary PPM (Netpbm "P6", maxval 255), the image format of GTSRB: an ASCII header "P6 <width> <height>
// <maxval>" (whitespace-separated, '#' comments allowed), one whitespace byte, then width x height RGB
// triples. Other Netpbm variants (P3 ASCII, P5 grey, 16-bit maxvals) are refused.
import { InputError } from '../types';
import type { RgbImage } from './resize';
import { readBytes } from './files';

/** Refuse headers that would allocate more than this many pixels (a corrupt or hostile header). */
export const MAX_PPM_PIXELS = 1 << 26;

const isSpace = (b: number): boolean => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0b || b === 0x0c;

/** Decode a P6 PPM's bytes; `file` names it in errors. */
export function decodePpm(bytes: Uint8Array, file: string): RgbImage {
  if (bytes.length < 2 || bytes[0] !== 0x50 /* P */) throw new InputError('not a PPM image (no "P" magic)', file);
  const kind = String.fromCharCode(bytes[1]);
  if (kind !== '6') {
    const what = kind === '3' ? 'an ASCII PPM (P3)' : `a Netpbm P${kind} image`;
    throw new InputError(`${what}; only binary RGB PPM (P6, maxval 255) is read`, file);
  }
  let at = 2;
  const fields: number[] = [];
  while (fields.length < 3) {
    while (at < bytes.length && (isSpace(bytes[at]) || bytes[at] === 0x23)) {
      if (bytes[at] === 0x23) while (at < bytes.length && bytes[at] !== 0x0a && bytes[at] !== 0x0d) at++;
      else at++;
    }
    const start = at;
    while (at < bytes.length && bytes[at] >= 0x30 && bytes[at] <= 0x39) at++;
    if (at === start || at - start > 9) throw new InputError('truncated or malformed PPM header (expected width, height, maxval)', file);
    fields.push(Number(String.fromCharCode(...bytes.subarray(start, at))));
  }
  if (at >= bytes.length || !isSpace(bytes[at]))
    throw new InputError('truncated or malformed PPM header (no whitespace before the pixels)', file);
  at++;
  const [width, height, maxval] = fields;
  if (maxval !== 255) throw new InputError(`PPM maxval ${maxval}; only 8-bit PPM (maxval 255) is read`, file);
  if (width < 1 || height < 1 || width * height > MAX_PPM_PIXELS) {
    throw new InputError(`PPM size ${width}x${height} is empty or larger than ${MAX_PPM_PIXELS} pixels`, file);
  }
  const need = width * height * 3;
  if (bytes.length - at < need) {
    throw new InputError(`truncated PPM: ${width}x${height} RGB needs ${need} bytes of pixels, the file holds ${bytes.length - at}`, file);
  }
  return { width, height, rgb: new Uint8Array(bytes.subarray(at, at + need)) };
}

export function readPpm(file: string): RgbImage {
  return decodePpm(readBytes(file), file);
}
