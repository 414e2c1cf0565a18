// The engine's entry points: each job takes a plain config, an event callback and an AbortSignal, stores
// its run folder, and returns plain results. The CLI, the extension's worker and the tests all call these.
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { initBackend } from '../engine/backend';
import { readCheckpoint, saveModelFile, specMetadata } from '../engine/checkpoint';
import type { AttentionJobConfig, BackdoorConfig, EraseJobConfig, EvalJobConfig, FinetuneJobConfig, JobConfig, TrainJobConfig } from './config';
import { validateBackdoor, validateTraining } from './config';
import { cleanSubset, loadDataset } from '../engine/data';
import { evaluate, type EvalSets } from '../engine/evaluate';
import { createModel, defaultSpecFor, describeSpec, modelFromStateDict, type Model } from '../engine/models';
import { RunStore, type RunHandle } from './run-store';
import { DivergedError, RunCancelledError, train, type TrainProgress, type TrainSettings } from '../engine/train';
import { backdoorTestSet, poisonTrainingSet } from '../engine/triggers';
import { InputError, type ImageDataset } from '../engine/types';
import { attentionSnapshot, sampleImages, saveAttentionFiles, type AttentionSamples, type AttentionSnapshot, type SampleImages } from '../engine/attention-snapshot';
import { selectImages } from '../engine/data';
import { imageAttentionBody, modelNamesOf } from './image-attention';
import type { ResumePoint } from './resume';

export type Phase = 'train' | 'teacher' | 'nad' | 'eval';

/** One row of the ACC/ASR table. */
export interface ResultRow {
  readonly model: 'backdoored' | 'teacher' | 'erased' | 'trained' | 'finetuned' | 'evaluated';
  readonly acc: number;
  readonly asr: number;
}

export type JobEvent =
  | { readonly type: 'started'; readonly runId: string; readonly runDir: string; readonly backend: string }
  | { readonly type: 'phase'; readonly phase: Phase; readonly label: string; readonly epochs?: number }
  | { readonly type: 'progress'; readonly phase: Phase; readonly progress: TrainProgress }
  | { readonly type: 'table'; readonly rows: readonly ResultRow[] }
  | { readonly type: 'attention'; readonly snapshot: AttentionSnapshot }
  /** The images the attention maps are of, once per run before any map: a live panel draws the maps over them. */
  | { readonly type: 'samples'; readonly samples: SampleImages }
  | { readonly type: 'log'; readonly message: string };

export interface JobContext {
  /** Working folder: runs are stored in <cwd>/.nad/runs unless `runsDir` is given. */
  readonly cwd: string;
  readonly runsDir?: string;
  readonly onEvent?: (e: JobEvent) => void;
  readonly signal?: AbortSignal;
  /** Continue an interrupted run in its folder instead of creating one (see resume.ts). */
  readonly resume?: ResumePoint;
}

export interface JobResult {
  readonly runId: string;
  readonly runDir: string;
  readonly backend: string;
  /** Headline numbers of the produced/evaluated model, percent. */
  readonly acc: number;
  readonly asr: number;
  readonly table: readonly ResultRow[];
  /** The produced model file, if the job produced one. */
  readonly modelPath?: string;
}

export function runJob(config: JobConfig, ctx: JobContext): Promise<JobResult> {
  switch (config.kind) {
    case 'train':
      return withRun(config, ctx, (run, env) => trainJob(config, run, env));
    case 'finetune':
      return withRun(config, ctx, (run, env) => finetuneJob(config, run, env));
    case 'erase':
      return withRun(config, ctx, (run, env) => eraseJob(config, run, env));
    case 'eval':
      return withRun(config, ctx, (run, env) => evalJob(config, run, env));
    case 'attention':
      return withRun(config, ctx, (run, env) => attentionJob(config, run, env));
    case 'imageAttention':
      return withRun(config, ctx, async (run, env) => {
        await imageAttentionBody(config, run, (message) => env.emit({ type: 'log', message }), env.signal);
        return { acc: NaN, asr: NaN, table: [] };
      });
    default: {
      const never: never = config;
      throw new InputError(`unknown job kind ${JSON.stringify((never as { kind?: unknown }).kind)}`);
    }
  }
}

interface Env {
  readonly emit: (e: JobEvent) => void;
  readonly signal?: AbortSignal;
  readonly backend: string;
  readonly resume?: ResumePoint;
}

type JobBody = (run: RunHandle, env: Env) => Promise<Omit<JobResult, 'runId' | 'runDir' | 'backend'>>;

/** Create the run folder, run the body, and leave the folder's status truthful whatever happens. */
async function withRun(config: JobConfig, ctx: JobContext, body: JobBody): Promise<JobResult> {
  const emit = (e: JobEvent): void => ctx.onEvent?.(e);
  const backend = await initBackend(config.backend);
  for (const reason of backend.fallbackReasons) emit({ type: 'log', message: `backend: ${reason}` });
  const store = new RunStore(ctx.cwd, ctx.runsDir);
  const run = ctx.resume?.run ?? store.create(config.kind, { ...config, backendUsed: backend.name }, config.name);
  run.update({ backend: backend.description });
  emit({ type: 'started', runId: run.id, runDir: run.dir, backend: backend.description });
  const log = (message: string): void => {
    run.appendMetric({ type: 'log', message });
    emit({ type: 'log', message });
  };
  log(`backend: ${backend.description}`);
  const tensorsBefore = tf.memory().numTensors;
  try {
    const out = await body(run, { emit: (e) => (e.type === 'log' ? log(e.message) : emit(e)), signal: ctx.signal, backend: backend.description, resume: ctx.resume });
    // Every finished run stores its ACC/ASR table, so a panel opened later shows what the run showed.
    run.writeFile('results.json', JSON.stringify({ table: out.table }, null, 2) + '\n');
    run.finish({ acc: out.acc, asr: out.asr });
    return { ...out, runId: run.id, runDir: run.dir, backend: backend.description };
  } catch (e) {
    if (e instanceof RunCancelledError) run.cancel();
    else run.fail(e instanceof Error ? e.message : String(e));
    throw e;
  } finally {
    const leaked = tf.memory().numTensors - tensorsBefore;
    if (leaked > 0) log(`warning: ${leaked} tensors were not released by this run`);
  }
}

interface TestData {
  readonly evalSets: EvalSets;
  /** A few non-target test images, clean and triggered, whose attention maps are shown and stored. */
  readonly samples: AttentionSamples;
}

/**
 * Load a test set and its backdoor counterpart (triggered non-target images labelled with the attack
 * label), and announce the attention samples' images.
 */
async function loadTestData(env: Env, test: string, backdoor: BackdoorConfig, samples = 4): Promise<TestData> {
  const clean = await loadDataset(test, { split: 'test' });
  validateBackdoor(backdoor, clean.numClasses, 'backdoor');
  const bd = backdoorTestSet(clean, { trigger: backdoor.trigger, targetType: backdoor.targetType, targetLabel: backdoor.targetLabel });
  const k = Math.min(samples, bd.count);
  // Spread the samples over the set so several classes show up.
  const picks = Array.from({ length: k }, (_, i) => Math.floor((i * bd.count) / k));
  const chosen = { clean: selectImages(clean, picks.map((i) => bd.sourceIndices[i])), triggered: selectImages(bd, picks) };
  env.emit({ type: 'samples', samples: sampleImages(chosen) });
  return { evalSets: { clean, backdoor: bd }, samples: chosen };
}

/** Read and check a model file once; `make()` builds as many independent copies as a job needs. */
async function readModelFile(path: string, data?: ImageDataset): Promise<{ make: () => Model }> {
  const ck = await readCheckpoint(path);
  if (data) {
    const s = ck.spec;
    if (s.numClasses !== data.numClasses) throw new InputError(`the model has ${s.numClasses} classes but the data (${data.source}) has ${data.numClasses}`, path);
    if (s.inChannels !== data.channels) throw new InputError(`the model takes ${s.inChannels}-channel images but the data (${data.source}) has ${data.channels} channels`, path);
  }
  return { make: () => modelFromStateDict(ck.spec, ck.stateDict, path) };
}

async function loadModelFile(path: string, data?: ImageDataset): Promise<Model> {
  return (await readModelFile(path, data)).make();
}

async function saveModel(run: RunHandle, rel: string, model: Model, extra: Record<string, string>): Promise<string> {
  const file = run.path(rel);
  mkdirSync(dirname(file), { recursive: true });
  await saveModelFile(file, model.params.toStateDict(), { ...specMetadata(model.spec), ...extra });
  return file;
}

function trainEvents(env: Env, phase: Phase, run: RunHandle): (p: TrainProgress) => void {
  return (p) => {
    env.emit({ type: 'progress', phase, progress: p });
    if (p.type === 'epoch') {
      run.appendMetric({ type: 'epoch', epoch: p.epoch, loss: p.loss, acc: p.acc, asr: p.asr, lr: p.lr, seconds: p.seconds, imagesPerSecond: p.imagesPerSecond });
      run.update({ lastEpoch: p.epoch });
    }
  };
}

function cleanData(full: ImageDataset, cfg: { cleanCount?: number; cleanRatio?: number; seed: number }): ImageDataset {
  if (cfg.cleanCount === undefined && cfg.cleanRatio === undefined) return full;
  return cleanSubset(full, { count: cfg.cleanCount, ratio: cfg.cleanRatio, seed: cfg.seed });
}

async function trainWithSnapshots(
  args: { student: Model; teacher?: Model; data: ImageDataset; test: TestData; settings: TrainSettings; phase: Phase; label: string; modelRel: string },
  run: RunHandle,
  env: Env,
): Promise<{ acc: number; asr: number }> {
  validateTraining(args.settings, args.label);
  env.emit({ type: 'phase', phase: args.phase, label: args.label, epochs: args.settings.epochs });
  // Resuming: start from the weights this phase saved after its last completed epoch.
  const done = env.resume?.epochsDone[args.modelRel] ?? 0;
  if (done > 0) args.student.params.loadStateDict((await readCheckpoint(run.path(args.modelRel))).stateDict, run.path(args.modelRel));
  if (done >= args.settings.epochs) return evaluate(args.student, args.test.evalSets);
  const records = await train({
    startEpoch: done,
    student: args.student,
    teacher: args.teacher,
    data: args.data,
    evalSets: args.test.evalSets,
    settings: args.settings,
    signal: env.signal,
    onProgress: trainEvents(env, args.phase, run),
    onEpochEnd: async (epoch) => {
      await saveModel(run, args.modelRel, args.student, { epoch: String(epoch) });
      if (args.phase === 'nad' || args.phase === 'teacher') {
        env.emit({ type: 'attention', snapshot: attentionSnapshot(args.phase === 'nad' ? 'erased' : 'teacher', args.student, args.test.samples, epoch) });
      }
    },
  });
  const last = records[records.length - 1];
  return { acc: last.acc, asr: last.asr };
}

async function trainJob(cfg: TrainJobConfig, run: RunHandle, env: Env): Promise<Omit<JobResult, 'runId' | 'runDir' | 'backend'>> {
  const full = await loadDataset(cfg.data, { split: 'train' });
  validateBackdoor(cfg.backdoor, full.numClasses, 'backdoor');
  const poisoned = poisonTrainingSet(full, { trigger: cfg.backdoor.trigger, targetType: cfg.backdoor.targetType, targetLabel: cfg.backdoor.targetLabel, injectPortion: cfg.backdoor.injectPortion, seed: cfg.seed });
  env.emit({ type: 'log', message: `training data: ${full.count} images from ${full.source}, ${poisoned.poisonedIndices.length} poisoned with ${cfg.backdoor.trigger.name}` });
  const test = await loadTestData(env, cfg.test, cfg.backdoor);
  const spec = cfg.model === 'auto' ? defaultSpecFor(full) : cfg.model;
  const model = createModel(spec, cfg.seed);
  env.emit({ type: 'log', message: `model: ${describeSpec(spec)}, ${model.params.parameterCount()} parameters` });
  try {
    const r = await trainWithSnapshots({ student: model, data: poisoned, test, settings: cfg.training, phase: 'train', label: 'Training the backdoored model', modelRel: 'model/model.safetensors' }, run, env);
    const table = [{ model: 'trained' as const, ...r }];
    env.emit({ type: 'table', rows: table });
    await writeAttention(run, env, [['backdoored', model]], test.samples);
    return { ...r, table, modelPath: run.path('model/model.safetensors') };
  } finally {
    model.dispose();
  }
}

async function finetuneJob(cfg: FinetuneJobConfig, run: RunHandle, env: Env): Promise<Omit<JobResult, 'runId' | 'runDir' | 'backend'>> {
  const data = cleanData(await loadDataset(cfg.data, { split: 'train' }), cfg);
  const test = await loadTestData(env, cfg.test, cfg.backdoor);
  const { evalSets } = test;
  const source = await readModelFile(cfg.model, data);
  const backdoored = source.make();
  const model = source.make();
  try {
    const before = evaluate(backdoored, evalSets);
    const r = await trainWithSnapshots({ student: model, data, test, settings: cfg.training, phase: 'teacher', label: `Finetuning on ${data.count} clean images`, modelRel: 'model/model.safetensors' }, run, env);
    const table: ResultRow[] = [
      { model: 'backdoored', ...before },
      { model: 'finetuned', ...r },
    ];
    env.emit({ type: 'table', rows: table });
    await writeAttention(run, env, [['backdoored', backdoored], ['teacher', model]], test.samples);
    return { ...r, table, modelPath: run.path('model/model.safetensors') };
  } finally {
    backdoored.dispose();
    model.dispose();
  }
}

async function eraseJob(cfg: EraseJobConfig, run: RunHandle, env: Env): Promise<Omit<JobResult, 'runId' | 'runDir' | 'backend'>> {
  const data = cleanData(await loadDataset(cfg.data, { split: 'train' }), cfg);
  env.emit({ type: 'log', message: `clean data: ${data.count} images from ${data.source}` });
  const test = await loadTestData(env, cfg.test, cfg.backdoor);
  const { evalSets } = test;
  const studentFile = await readModelFile(cfg.student, data);
  const backdoored = studentFile.make();
  const models: Model[] = [backdoored];
  try {
    const before = evaluate(backdoored, evalSets);
    const table: ResultRow[] = [{ model: 'backdoored', ...before }];
    env.emit({ type: 'table', rows: table });
    let teacher: Model;
    if (cfg.teacher) {
      teacher = await loadModelFile(cfg.teacher, data);
      models.push(teacher);
      if (teacher.spec.arch !== backdoored.spec.arch) env.emit({ type: 'log', message: `teacher is ${describeSpec(teacher.spec)}, student ${describeSpec(backdoored.spec)}` });
      table.push({ model: 'teacher', ...evaluate(teacher, evalSets) });
    } else {
      teacher = studentFile.make();
      models.push(teacher);
      const r = await trainWithSnapshots({ student: teacher, data, test, settings: cfg.teacherTraining, phase: 'teacher', label: 'Finetuning the teacher', modelRel: 'model/teacher.safetensors' }, run, env);
      table.push({ model: 'teacher', ...r });
    }
    env.emit({ type: 'table', rows: table });
    const mismatch = tf.tidy(() => {
      const probe = tf.zeros([1, data.height, data.width, data.channels]) as tf.Tensor4D;
      const gs = backdoored.forward(probe, false).groups;
      const gt = teacher.forward(probe, false).groups;
      return gs.some((g, i) => g.shape[1] !== gt[i]?.shape[1] || g.shape[2] !== gt[i]?.shape[2]);
    });
    if (mismatch) throw new InputError(`the teacher's attention maps do not have the student's sizes (${describeSpec(teacher.spec)} vs ${describeSpec(backdoored.spec)})`, cfg.teacher);
    env.emit({ type: 'attention', snapshot: attentionSnapshot('teacher', teacher, test.samples, 0) });
    env.emit({ type: 'attention', snapshot: attentionSnapshot('backdoored', backdoored, test.samples, 0) });
    const student = studentFile.make();
    models.push(student);
    const r = await trainWithSnapshots({ student, teacher, data, test, settings: cfg.training, phase: 'nad', label: 'Neural Attention Distillation', modelRel: 'model/model.safetensors' }, run, env);
    table.push({ model: 'erased', ...r });
    env.emit({ type: 'table', rows: table });
    await writeAttention(run, env, [['backdoored', backdoored], ['teacher', teacher], ['erased', student]], test.samples);
    return { ...r, table, modelPath: run.path('model/model.safetensors') };
  } finally {
    for (const m of models) m.dispose();
  }
}

async function evalJob(cfg: EvalJobConfig, run: RunHandle, env: Env): Promise<Omit<JobResult, 'runId' | 'runDir' | 'backend'>> {
  const test = await loadTestData(env, cfg.test, cfg.backdoor);
  const { evalSets } = test;
  const model = await loadModelFile(cfg.model, evalSets.clean);
  try {
    const r = evaluate(model, evalSets);
    env.emit({ type: 'log', message: `ACC ${r.acc.toFixed(2)}% on ${evalSets.clean.count} images, ASR ${r.asr.toFixed(2)}% on ${evalSets.backdoor?.count ?? 0} triggered non-target images` });
    const table = [{ model: 'evaluated' as const, ...r }];
    env.emit({ type: 'table', rows: table });
    await writeAttention(run, env, [['evaluated', model]], test.samples);
    return { ...r, table };
  } finally {
    model.dispose();
  }
}

async function writeAttention(run: RunHandle, env: Env, models: ReadonlyArray<readonly [string, Model]>, samples: AttentionSamples): Promise<void> {
  const snaps = models.map(([name, m]) => attentionSnapshot(name, m, samples, -1));
  const files = saveAttentionFiles(run, snaps, samples);
  env.emit({ type: 'log', message: `attention maps: ${files} files in ${run.path('attention')}` });
}

async function attentionJob(cfg: AttentionJobConfig, run: RunHandle, env: Env): Promise<Omit<JobResult, 'runId' | 'runDir' | 'backend'>> {
  if (cfg.models.length === 0) throw new InputError('give at least one model file');
  const test = await loadTestData(env, cfg.test, cfg.backdoor, cfg.count);
  const models: Array<readonly [string, Model]> = [];
  try {
    const names = modelNamesOf(cfg.models);
    for (const [i, file] of cfg.models.entries()) models.push([names[i], await loadModelFile(file, test.evalSets.clean)]);
    const table: ResultRow[] = [];
    for (const [, m] of models) table.push({ model: 'evaluated', ...evaluate(m, test.evalSets) });
    await writeAttention(run, env, models, test.samples);
    return { acc: table[0].acc, asr: table[0].asr, table };
  } finally {
    for (const [, m] of models) m.dispose();
  }
}

export { DivergedError, RunCancelledError };
