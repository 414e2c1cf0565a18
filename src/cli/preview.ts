// `nad preview`: an attack's trigger gallery without training, from the same flags as `nad train`. Prints
// what the attack changed; `--out gallery.png` writes the gallery as one image (rows: a poisoned training
// image, then a triggered test image; columns: clean, poisoned, difference amplified), for a paper or a check.
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { buildJobConfig } from '../runs/config-file';
import { previewAttack, PREVIEW_DEFAULTS } from '../runs/jobs/preview';
import type { ImagesFigure } from '../shared/run-events';
import { InputError } from '../engine/types';
import { addAttackOptions, attackFromFlags } from './attack';
import { controller } from './execute';
import { addBackdoor, addCommon, backdoorOf, backendOf, num, type CommonFlags } from './options';
import { BADNET_TRAINING } from '../runs/config';

type Flags = CommonFlags & Record<string, string | boolean | undefined>;

/** Pixel size of one image cell in the PNG (each image scaled by an integer factor) and the gap between cells. */
const CELL = 96;
const GAP = 6;

/** The galleries as one RGB PNG: one row per sample, three images per row, nearest-neighbour scaled. */
export function galleryPng(figures: readonly ImagesFigure[]): Buffer {
  const rows = figures.flatMap((f) => {
    const out = [];
    for (let i = 0; i < f.images.length; i += 3) out.push(f.images.slice(i, i + 3));
    return out;
  });
  if (rows.length === 0) throw new InputError('nothing to draw: the attack poisoned no image');
  const width = 3 * CELL + 4 * GAP;
  const height = rows.length * CELL + (rows.length + 1) * GAP;
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.alloc(width * height * 4, 255);
  rows.forEach((row, r) =>
    row.forEach((img, c) => {
      const px = Buffer.from(img.pixels, 'base64');
      const scale = Math.max(1, Math.floor(CELL / Math.max(img.height, img.width)));
      const x0 = GAP + c * (CELL + GAP);
      const y0 = GAP + r * (CELL + GAP);
      for (let y = 0; y < img.height * scale && y < CELL; y++)
        for (let x = 0; x < img.width * scale && x < CELL; x++) {
          const at = (Math.floor(y / scale) * img.width + Math.floor(x / scale)) * img.channels;
          const o = ((y0 + y) * width + x0 + x) * 4;
          png.data[o] = px[at];
          png.data[o + 1] = px[img.channels === 3 ? at + 1 : at];
          png.data[o + 2] = px[img.channels === 3 ? at + 2 : at];
          png.data[o + 3] = 255;
        }
    }),
  );
  return PNG.sync.write(png, { colorType: 2 });
}

export function addPreviewCommand(program: Command): void {
  addBackdoor(
    addAttackOptions(
      addCommon(
        program
          .command('preview')
          .description(
            "show what an attack does to images, without training: a few poisoned training images and the test-time trigger (nad train's flags)",
          ),
      ),
    ),
    true,
  )
    .requiredOption('--data <path>', "training data: 'mnist', a CIFAR-10 .bin/folder, IDX files, or a folder of class folders")
    .option('--test <path>', 'test data the trigger is shown on (default: the test split of --data)')
    .option('--samples <n>', 'poisoned (and triggered test) images shown', String(PREVIEW_DEFAULTS.samples))
    .option('--sample-size <n>', 'training images drawn (seeded) and poisoned for the preview', String(PREVIEW_DEFAULTS.sampleSize))
    .option('--out <file.png>', 'write the gallery as a PNG: rows of clean | poisoned | difference')
    .action(async (f: Flags, cmd: Command) => {
      const seed = num(f.seed as string, '--seed', { int: true });
      const attack = attackFromFlags(f, cmd);
      const config = buildJobConfig(
        {
          kind: 'train',
          name: 'preview',
          backend: backendOf(f),
          seed,
          data: f.data as string,
          test: (f.test as string) ?? (f.data as string),
          model: 'auto',
          backdoor: attack?.backdoor ?? backdoorOf(f),
          ...(attack ? { attack: attack.attack } : {}),
          training: BADNET_TRAINING,
        },
        'the command line',
      );
      if (config.kind !== 'train') throw new Error('unreachable');
      const out = f.out as string | undefined;
      if (out !== undefined && !/\.png$/i.test(out)) throw new InputError(`--out must name a .png file, got '${out}'`);
      const p = await previewAttack(config, {
        samples: num(f.samples as string, '--samples', { int: true, min: 1, max: 32 }),
        sampleSize: num(f.sampleSize as string, '--sample-size', { int: true, min: 10 }),
        signal: controller.signal,
        emit: (e) => {
          if (e.type === 'log' && !f.quiet) process.stderr.write(`${e.message}\n`);
        },
      });
      if (out) writeFileSync(out, galleryPng(p.figures));
      if (f.json) {
        const figures = p.figures.map((g) => ({ id: g.id, title: g.title, captions: g.images.map((i) => i.caption) }));
        process.stdout.write(
          JSON.stringify({ title: p.title, summary: p.summary, backend: p.backend, figures, ...(out ? { out } : {}) }, null, 2) + '\n',
        );
        return;
      }
      process.stdout.write(`${p.title}\n${p.summary}\n`);
      for (const g of p.figures) {
        process.stdout.write(`\n${g.title}\n`);
        for (let i = 0; i < g.images.length; i += 3)
          process.stdout.write(
            `  ${g.images
              .slice(i, i + 3)
              .map((x) => x.caption)
              .join(' | ')}\n`,
          );
      }
      if (out) process.stdout.write(`\nwrote ${out}\n`);
    });
}
