// GTSRB (German Traffic Sign Recognition Benchmark) in its official layout:
//   train: GTSRB/Final_Training/Images/<00000..00042>/GT-<class>.csv + <class>/*.ppm
//   test:  GT-final_test.csv (from GTSRB_Final_Test_GT.zip) + GTSRB/Final_Test/Images/*.ppm
// (BackdoorBench's copy, Train/Images/... and Test/GT-final_test.csv + Test/Images/, is found too.)
// Every CSV is semicolon-separated with the header Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId.
// Images (PPM, various sizes) are resized to 32x32 as BackdoorBench does (SCLBD/BackdoorBench,
// utils/dataset/GTSRB.py + dataset_and_transform_generate.py: the whole image, `transforms.Resize((32, 32))`,
// i.e. PIL's antialiased bilinear). With the `roi` option each image is first cropped to its annotated
// region of interest, as PIL's `crop((X1, Y1, X2, Y2))`.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError, type ImageDataset } from '../types';
import { listFolder, pathKind } from './files';
import { readPpm } from './ppm';
import { cropRgb, resizeBilinear } from './resize';

export const GTSRB_SIDE = 32;
export const GTSRB_CLASSES: readonly string[] = [
  'Speed limit (20km/h)',
  'Speed limit (30km/h)',
  'Speed limit (50km/h)',
  'Speed limit (60km/h)',
  'Speed limit (70km/h)',
  'Speed limit (80km/h)',
  'End of speed limit (80km/h)',
  'Speed limit (100km/h)',
  'Speed limit (120km/h)',
  'No passing',
  'No passing for vehicles over 3.5 metric tons',
  'Right-of-way at the next intersection',
  'Priority road',
  'Yield',
  'Stop',
  'No vehicles',
  'Vehicles over 3.5 metric tons prohibited',
  'No entry',
  'General caution',
  'Dangerous curve to the left',
  'Dangerous curve to the right',
  'Double curve',
  'Bumpy road',
  'Slippery road',
  'Road narrows on the right',
  'Road work',
  'Traffic signals',
  'Pedestrians',
  'Children crossing',
  'Bicycles crossing',
  'Beware of ice/snow',
  'Wild animals crossing',
  'End of all speed and passing limits',
  'Turn right ahead',
  'Turn left ahead',
  'Ahead only',
  'Go straight or right',
  'Go straight or left',
  'Keep right',
  'Keep left',
  'Roundabout mandatory',
  'End of no passing',
  'End of no passing by vehicles over 3.5 metric tons',
];
const TEST_CSV = 'GT-final_test.csv';
const UNLABELLED_TEST_CSV = 'GT-final_test.test.csv';
const COLUMNS = ['Filename', 'Width', 'Height', 'Roi.X1', 'Roi.Y1', 'Roi.X2', 'Roi.Y2', 'ClassId'] as const;
const CLASS_FOLDER = /^\d{5}$/;

export interface GtsrbOptions {
  /** Crop each image to its annotated region of interest before resizing. Default false (BackdoorBench). */
  readonly roi?: boolean;
}

interface Annotation {
  readonly file: string;
  readonly width: number;
  readonly height: number;
  readonly roi: readonly [number, number, number, number];
  readonly label: number;
}

/** Parse one GTSRB annotation CSV; image paths are resolved against `imageFolder`. */
export function parseGtsrbCsv(text: string, csv: string, imageFolder: string): Annotation[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim().length > 0);
  if (lines.length === 0) throw new InputError('empty GTSRB annotation file; expected a header line ' + COLUMNS.join(';'), csv);
  const header = lines[0].split(';').map((s) => s.trim());
  const at = COLUMNS.map((c) => header.indexOf(c));
  const missing = COLUMNS.filter((_, i) => at[i] < 0);
  if (missing.length > 0) {
    const hint = missing.includes('ClassId') ? ` (the test CSV with labels is ${TEST_CSV}, from GTSRB_Final_Test_GT.zip)` : '';
    throw new InputError(`GTSRB annotation file lacks column(s) ${missing.join(', ')}; its header is '${lines[0]}'${hint}`, csv);
  }
  return lines.slice(1).map((line, r) => {
    const cells = line.split(';').map((s) => s.trim());
    if (cells.length < header.length) throw new InputError(`line ${r + 2} has ${cells.length} fields, the header ${header.length}`, csv);
    const int = (k: number): number => {
      const s = cells[at[k]];
      if (!/^\d+$/.test(s)) throw new InputError(`line ${r + 2}: ${COLUMNS[k]} '${s}' is not a whole number`, csv);
      return Number(s);
    };
    const label = int(7);
    if (label >= GTSRB_CLASSES.length) {
      throw new InputError(`line ${r + 2}: ClassId ${label} is out of range 0..${GTSRB_CLASSES.length - 1}`, csv);
    }
    return { file: join(imageFolder, cells[at[0]]), width: int(1), height: int(2), roi: [int(3), int(4), int(5), int(6)], label };
  });
}

/** The training images folder (holding 00000..00042) under `folder`, if any; Train/ is BackdoorBench's name. */
function trainingFolder(folder: string): string | undefined {
  const candidates = [
    join(folder, 'GTSRB', 'Final_Training', 'Images'),
    join(folder, 'Final_Training', 'Images'),
    join(folder, 'Train', 'Images'),
    join(folder, 'Images'),
    folder,
  ];
  return candidates.find(
    (c) => pathKind(c) === 'folder' && listFolder(c).some((n) => CLASS_FOLDER.test(n) && existsSync(join(c, n, `GT-${n}.csv`))),
  );
}

const testImageFolders = (folder: string): string[] => [
  join(folder, 'GTSRB', 'Final_Test', 'Images'),
  join(folder, 'Final_Test', 'Images'),
  join(folder, 'Test', 'Images'),
  join(folder, 'Images'),
  folder,
];

/** Where the test annotation file may be: beside the images or in the folder the GT zip was unpacked to. */
function testCsvCandidates(folder: string): string[] {
  return [
    ...testImageFolders(folder),
    join(folder, 'GTSRB'),
    join(folder, 'GTSRB', 'Final_Test'),
    join(folder, 'Final_Test'),
    join(folder, 'Test'),
  ].map((d) => join(d, TEST_CSV));
}

/** Whether `folder` holds GTSRB in the official layout (either split). */
export function isGtsrbFolder(folder: string): boolean {
  if (trainingFolder(folder)) return true;
  return testImageFolders(folder).some((d) => existsSync(join(d, TEST_CSV)) || existsSync(join(d, UNLABELLED_TEST_CSV)));
}

/** The annotations of a split, with image paths. */
function splitAnnotations(folder: string, split: 'train' | 'test'): Annotation[] {
  if (split === 'train') {
    const images = trainingFolder(folder);
    if (!images) throw new InputError('GTSRB folder has no Final_Training/Images/<class>/GT-<class>.csv for the train split', folder);
    return listFolder(images)
      .filter((n) => CLASS_FOLDER.test(n) && pathKind(join(images, n)) === 'folder')
      .flatMap((n) => {
        const csv = join(images, n, `GT-${n}.csv`);
        if (!existsSync(csv)) throw new InputError(`class folder ${n} has no GT-${n}.csv`, join(images, n));
        return parseGtsrbCsv(readFileSync(csv, 'utf8'), csv, join(images, n));
      });
  }
  const csv = testCsvCandidates(folder).find((f) => existsSync(f));
  if (!csv) {
    const unlabelled = testImageFolders(folder).some((d) => existsSync(join(d, UNLABELLED_TEST_CSV)));
    throw new InputError(
      `GTSRB folder has no ${TEST_CSV} for the test split` +
        (unlabelled ? ` (${UNLABELLED_TEST_CSV} has no ClassId column: unpack GTSRB_Final_Test_GT.zip beside the images)` : '') +
        `; looked in ${testCsvCandidates(folder)
          .map((f) => dirname(f))
          .join(', ')}`,
      folder,
    );
  }
  const text = readFileSync(csv, 'utf8');
  // The images are beside the CSV, or in Final_Test/Images when the GT zip was unpacked elsewhere.
  const first = parseGtsrbCsv(text, csv, '')[0];
  const imageFolder = first ? [dirname(csv), ...testImageFolders(folder)].find((d) => existsSync(join(d, first.file))) : dirname(csv);
  if (!imageFolder) throw new InputError(`image ${first?.file} listed first in ${TEST_CSV} is not beside it nor in Final_Test/Images`, csv);
  return parseGtsrbCsv(text, csv, imageFolder);
}

/** Read a GTSRB split as 32x32 RGB images with 43 classes. */
export function loadGtsrb(folder: string, split: 'train' | 'test', opts: GtsrbOptions = {}, source: string = folder): ImageDataset {
  const rows = splitAnnotations(folder, split);
  if (rows.length === 0) throw new InputError(`GTSRB ${split} split lists no images`, folder);
  const size = GTSRB_SIDE * GTSRB_SIDE * 3;
  const images = new Uint8Array(rows.length * size);
  const labels = new Int32Array(rows.length);
  rows.forEach((row, i) => {
    let img = readPpm(row.file);
    if (img.width !== row.width || img.height !== row.height) {
      throw new InputError(`image is ${img.width}x${img.height} but its annotation says ${row.width}x${row.height}`, row.file);
    }
    if (opts.roi) {
      const [x1, y1, x2, y2] = row.roi;
      if (!(x1 < x2 && y1 < y2 && x2 <= img.width && y2 <= img.height)) {
        throw new InputError(
          `region of interest (${x1},${y1})-(${x2},${y2}) is empty or outside the ${img.width}x${img.height} image`,
          row.file,
        );
      }
      img = cropRgb(img, x1, y1, x2, y2);
    }
    images.set(resizeBilinear(img, GTSRB_SIDE, GTSRB_SIDE).rgb, i * size);
    labels[i] = row.label;
  });
  return {
    images,
    labels,
    count: rows.length,
    height: GTSRB_SIDE,
    width: GTSRB_SIDE,
    channels: 3,
    numClasses: GTSRB_CLASSES.length,
    classNames: GTSRB_CLASSES,
    source,
  };
}
