// A folder with one subfolder per class holding PNG/JPEG images (the torchvision ImageFolder layout).
// Class names are the sorted subfolder names; all images must share one size.
import { join } from 'node:path';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { InputError, type ImageDataset } from '../types';
import { listFolder, pathKind, readBytes } from './files';
import { checkJpegSize } from './jpeg';

const IMAGE_EXT = /\.(png|jpe?g)$/i;

export interface DecodedImage {
  readonly width: number;
  readonly height: number;
  /** RGB, 3 bytes per pixel, row-major (alpha dropped). */
  readonly rgb: Uint8Array;
  /** True when some pixel has R, G, B not all equal. */
  readonly colour: boolean;
}

/** The most pixels an image may declare (64 megapixels): larger is a damaged or hostile header, refused before decoding. */
export const MAX_IMAGE_PIXELS = 64 * 2 ** 20;
/** Deflate expands at most 1032:1, so a PNG's pixel rows cannot exceed this many bytes per byte of file. */
const DEFLATE_MAX_RATIO = 1032;
const PNG_CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Checks a PNG's declared size (IHDR) before pngjs allocates width x height x 4 bytes for it: at most
 * MAX_IMAGE_PIXELS, and no more pixel-row bytes than the file's compressed data can inflate to.
 */
function checkPngHeader(bytes: Uint8Array, file: string): void {
  if (bytes.length < 26) return; // pngjs refuses the truncated header itself
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = view.getUint32(16, false);
  const height = view.getUint32(20, false);
  const bitsPerPixel = Math.max(1, bytes[24]) * (PNG_CHANNELS[bytes[25]] ?? 1);
  const rowBytes = height * (1 + Math.ceil((width * bitsPerPixel) / 8));
  if (width * height > MAX_IMAGE_PIXELS)
    throw new InputError(`PNG declares ${width}x${height} pixels, more than the limit of ${MAX_IMAGE_PIXELS} (64 megapixels)`, file);
  if (rowBytes > DEFLATE_MAX_RATIO * bytes.length)
    throw new InputError(
      `PNG declares ${width}x${height} pixels (${rowBytes} bytes of pixel rows), more than a ${bytes.length}-byte file can hold`,
      file,
    );
}

/** Decode a PNG or JPEG file (by its signature) to RGB. */
export function decodeImageFile(file: string): DecodedImage {
  const bytes = readBytes(file);
  let width: number;
  let height: number;
  let rgba: Uint8Array;
  try {
    if (bytes[0] === 0x89 && bytes[1] === 0x50) {
      checkPngHeader(bytes, file);
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      ({ width, height } = png);
      rgba = png.data;
    } else if (bytes[0] === 0xff && bytes[1] === 0xd8) {
      checkJpegSize(bytes, file);
      const img = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: true,
        maxMemoryUsageInMB: 256,
        maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
      });
      ({ width, height } = img);
      rgba = img.data;
    } else {
      throw new Error('not a PNG or JPEG file');
    }
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`cannot decode image: ${e instanceof Error ? e.message : String(e)}`, file);
  }
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  let colour = false;
  for (let p = 0; p < n; p++) {
    const r = rgba[4 * p];
    const g = rgba[4 * p + 1];
    const b = rgba[4 * p + 2];
    rgb[3 * p] = r;
    rgb[3 * p + 1] = g;
    rgb[3 * p + 2] = b;
    if (r !== g || g !== b) colour = true;
  }
  return { width, height, rgb, colour };
}

/** Class subfolders (sorted) of a folder, or [] when it has none holding images. */
export function classFolders(folder: string): string[] {
  return listFolder(folder).filter(
    (n) => pathKind(join(folder, n)) === 'folder' && listFolder(join(folder, n)).some((f) => IMAGE_EXT.test(f)),
  );
}

/** Read every PNG/JPEG under `folder/<class>/`. Grayscale (1 channel) unless some image has colour. */
export function loadImageFolder(folder: string, source: string = folder): ImageDataset {
  const classes = classFolders(folder);
  if (classes.length === 0) throw new InputError('no class subfolders holding .png/.jpg images', folder);
  const decoded: DecodedImage[] = [];
  const labels: number[] = [];
  let first: { file: string; width: number; height: number } | undefined;
  let colour = false;
  classes.forEach((cls, label) => {
    for (const name of listFolder(join(folder, cls)).filter((f) => IMAGE_EXT.test(f))) {
      const file = join(folder, cls, name);
      const img = decodeImageFile(file);
      if (!first) first = { file, width: img.width, height: img.height };
      else if (img.width !== first.width || img.height !== first.height) {
        throw new InputError(
          `image is ${img.width}x${img.height} but ${first.file} is ${first.width}x${first.height}; all images must be the same size`,
          file,
        );
      }
      colour ||= img.colour;
      decoded.push(img);
      labels.push(label);
    }
  });
  if (!first) throw new InputError('no images found', folder);
  const { width, height } = first;
  const channels = colour ? 3 : 1;
  const px = width * height;
  const images = new Uint8Array(decoded.length * px * channels);
  decoded.forEach((img, i) => {
    if (channels === 3) images.set(img.rgb, i * px * 3);
    else for (let p = 0; p < px; p++) images[i * px + p] = img.rgb[3 * p];
  });
  return {
    images,
    labels: Int32Array.from(labels),
    count: decoded.length,
    height,
    width,
    channels,
    numClasses: classes.length,
    classNames: classes,
    source,
  };
}
