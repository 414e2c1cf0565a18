// Attention maps of any PNG/JPEG images under one or more models, written as a run of kind `attention`
// in the same layout as every run's attention/ (maps.json + PNG heatmaps), so one viewer reads both.
// Images are not resized: a resize would change what the model sees, so a size mismatch is an error.
import { basename } from 'node:path';
import { attentionSnapshot } from '../../engine/attention-snapshot';
import { saveAttentionFiles } from '../attention-files';
import { readCheckpoint } from '../../engine/checkpoint';
import { decodeImageFile } from '../../engine/data/image-folder';
import type { ImageAttentionConfig } from '../config';
import { modelFromStateDict, type Model } from '../../engine/models';
import { runNameOfModelFile, type RunHandle } from '../run-store';
import { RunCancelledError } from '../../engine/train';
import { attackLabel, createTrigger } from '../../engine/triggers';
import { InputError, type ImageDataset, type ModelSpec } from '../../engine/types';

/**
 * Snapshot name of a model file: its file name without the weights extension, or for a run's model the
 * run's name (every run's model is model.safetensors).
 */
export function modelNameOf(file: string): string {
  const base = basename(file).replace(/\.(pth\.tar|pth|pt|safetensors)$/i, '');
  const run = runNameOfModelFile(file);
  const name = run === undefined ? base : base === 'model' ? run : `${run}-${base}`;
  return name.replace(/[^A-Za-z0-9_.-]+/g, '-') || 'model';
}

/** Snapshot names of several model files, made distinct (`-2`, `-3`...) where two would be the same. */
export function modelNamesOf(files: readonly string[]): string[] {
  const used = new Set<string>();
  return files.map((file) => {
    const name = modelNameOf(file);
    let unique = name;
    for (let k = 2; used.has(unique); k++) unique = `${name}-${k}`;
    used.add(unique);
    return unique;
  });
}

/** One image as the model takes it: HWC uint8 with the model's channel count, or an InputError. */
export function imageFor(file: string, spec: ModelSpec): Uint8Array {
  const img = decodeImageFile(file);
  const size = spec.imageSize;
  if (img.width !== size || img.height !== size) {
    throw new InputError(
      `the image is ${img.width}x${img.height} but the model takes ${size}x${size} images; resize it to ${size}x${size} first`,
      file,
    );
  }
  if (spec.inChannels === 3) return img.rgb;
  if (img.colour) throw new InputError('the model takes grayscale images but this image is in colour', file);
  const gray = new Uint8Array(size * size);
  for (let p = 0; p < gray.length; p++) gray[p] = img.rgb[3 * p];
  return gray;
}

function sameInput(a: ModelSpec, b: ModelSpec): boolean {
  return a.imageSize === b.imageSize && a.inChannels === b.inChannels;
}

/** The job's body (run by jobs.ts's runJob, which owns the run folder's status): compute and store the maps. */
export async function imageAttentionBody(
  cfg: ImageAttentionConfig,
  run: RunHandle,
  log: (message: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  if (cfg.images.length === 0) throw new InputError('give at least one PNG or JPEG image');
  if (cfg.models.length === 0) throw new InputError('give at least one model file');
  if (cfg.labels && cfg.labels.length !== cfg.images.length)
    throw new InputError(`${cfg.labels.length} labels for ${cfg.images.length} images`);
  const models: Array<readonly [string, Model]> = [];
  const names = modelNamesOf(cfg.models);
  try {
    for (const file of cfg.models) {
      if (signal?.aborted) throw new RunCancelledError();
      const ck = await readCheckpoint(file);
      if (models.length > 0 && !sameInput(models[0][1].spec, ck.spec)) {
        const s = models[0][1].spec;
        throw new InputError(
          `takes ${ck.spec.imageSize}x${ck.spec.imageSize}x${ck.spec.inChannels} images, but ${cfg.models[0]} takes ${s.imageSize}x${s.imageSize}x${s.inChannels}`,
          file,
        );
      }
      models.push([names[models.length], modelFromStateDict(ck.spec, ck.stateDict, file)]);
    }
    const spec = models[0][1].spec;
    const shape = { height: spec.imageSize, width: spec.imageSize, channels: spec.inChannels };
    const size = shape.height * shape.width * shape.channels;
    const clean = new Uint8Array(cfg.images.length * size);
    cfg.images.forEach((file, k) => clean.set(imageFor(file, spec), k * size));
    const triggered = clean.slice();
    const trigger = createTrigger(cfg.trigger, shape);
    for (let k = 0; k < cfg.images.length; k++) trigger.stamp(triggered.subarray(k * size, (k + 1) * size));
    const labels = Int32Array.from(cfg.images, (_, k) => cfg.labels?.[k] ?? -1);
    // The label the backdoor would give; all2all needs the true label to know it.
    const attack = Int32Array.from(labels, (l) =>
      l >= 0 ? attackLabel(l, cfg.targetType, cfg.targetLabel, spec.numClasses) : cfg.targetType === 'all2all' ? -1 : cfg.targetLabel,
    );
    const base = { ...shape, count: cfg.images.length, numClasses: spec.numClasses, source: cfg.images.join(', ') };
    const samples: { clean: ImageDataset; triggered: ImageDataset } = {
      clean: { ...base, images: clean, labels },
      triggered: { ...base, images: triggered, labels: attack },
    };
    const snaps = models.map(([name, m]) => {
      if (signal?.aborted) throw new RunCancelledError();
      return attentionSnapshot(name, m, samples, -1);
    });
    const files = saveAttentionFiles(run, snaps, samples);
    log(`attention maps of ${cfg.images.length} image(s) under ${models.length} model(s): ${files} files in ${run.path('attention')}`);
  } finally {
    for (const [, m] of models) m.dispose();
  }
}
