// Reads a run folder into what the run panel shows: status.json, config.json, metrics.jsonl,
// results.json and attention/maps.json. Runs made by the CLI and by the extension read alike.
// No vscode import.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { AttentionSnapshot } from '../engine/attention-snapshot';
import type { Phase, ResultRow } from './jobs';
import { isResumable } from './resume';
import { RunStore, runNameOfModelFile, type RunKind, type RunSummary } from './run-store';
import type { EpochPoint, PanelRunInfo, PanelSnapshot, SampleImages } from '../shared/panel-protocol';
import { MAX_LOG_LINES } from '../shared/panel-protocol';

export function readRunSummary(runDir: string): RunSummary | { readonly problem: string } {
  const read = new RunStore('', dirname(runDir)).read(basename(runDir));
  return 'problem' in read ? { problem: read.problem } : read;
}

/** Everything the panel shows for a run folder, or the reason it cannot be read. */
export function readRunSnapshot(runDir: string): PanelSnapshot | { readonly problem: string } {
  const run = readRunSummary(runDir);
  if ('problem' in run) return run;
  const metrics = new RunStore('', dirname(runDir)).metrics(run.id);
  const phases = phasePlan(run.status.kind, run.config);
  const epochs: EpochPoint[] = [];
  const log: string[] = [];
  let index = 0;
  for (const m of metrics) {
    if (m.type === 'log') log.push(m.message);
    else if (m.type === 'epoch') {
      epochs.push({ phase: phaseAt(phases, index++), epoch: m.epoch, loss: m.loss, acc: m.acc, asr: m.asr, lr: m.lr, seconds: m.seconds });
    }
  }
  const maps = readMaps(runDir);
  return {
    run: runInfo(run),
    epochs,
    table: readTable(runDir, run),
    attention: maps?.snapshots ?? [],
    samples: maps?.samples,
    log: log.slice(-MAX_LOG_LINES),
  };
}

/** The panel's header for a run folder. */
export function runInfo(run: RunSummary): PanelRunInfo {
  const s = run.status;
  const name = typeof run.config['name'] === 'string' && run.config['name'] ? (run.config['name'] as string) : run.id;
  return {
    id: run.id,
    dir: run.dir,
    name,
    kind: s.kind,
    state: s.state,
    backend: s.backend,
    startedAt: s.startedAt,
    endedAt: s.endedAt,
    error: s.error,
    facts: runFacts(run.config),
    resumable: isResumable(run),
  };
}

/** The phases a run's epoch lines belong to, in order (epoch lines do not say which phase wrote them). */
function phasePlan(kind: RunKind, config: Record<string, unknown>): Array<{ phase: Phase; epochs: number }> {
  const epochsOf = (key: string): number => {
    const t = config[key];
    const e = typeof t === 'object' && t !== null ? (t as { epochs?: unknown }).epochs : undefined;
    return typeof e === 'number' ? e : 0;
  };
  switch (kind) {
    case 'train':
      return [{ phase: 'train', epochs: Infinity }];
    case 'finetune':
      return [{ phase: 'teacher', epochs: Infinity }];
    case 'erase':
      return config['teacher'] ? [{ phase: 'nad', epochs: Infinity }] : [{ phase: 'teacher', epochs: epochsOf('teacherTraining') }, { phase: 'nad', epochs: Infinity }];
    case 'eval':
    case 'attention':
    case 'imageAttention':
      return [{ phase: 'eval', epochs: Infinity }];
  }
}

function phaseAt(plan: ReadonlyArray<{ phase: Phase; epochs: number }>, index: number): Phase {
  let left = index;
  for (const p of plan) {
    if (left < p.epochs) return p.phase;
    left -= p.epochs;
  }
  return plan[plan.length - 1].phase;
}

const MODEL_OF_KIND: Record<RunKind, ResultRow['model']> = { train: 'trained', finetune: 'finetuned', erase: 'erased', eval: 'evaluated', attention: 'evaluated', imageAttention: 'evaluated' };

/** results.json when the run wrote one; else the headline numbers of status.json. */
function readTable(runDir: string, run: RunSummary): ResultRow[] {
  const file = join(runDir, 'results.json');
  if (existsSync(file)) {
    try {
      const table = (JSON.parse(readFileSync(file, 'utf8')) as { table?: unknown }).table;
      if (Array.isArray(table)) return table.filter((r): r is ResultRow => typeof r === 'object' && r !== null && typeof r.model === 'string' && typeof r.acc === 'number' && typeof r.asr === 'number');
    } catch {
      // fall back to status.json
    }
  }
  const { acc, asr } = run.status;
  return acc !== undefined && asr !== undefined ? [{ model: MODEL_OF_KIND[run.status.kind], acc, asr }] : [];
}

function readMaps(runDir: string): { snapshots: AttentionSnapshot[]; samples: SampleImages } | undefined {
  const file = join(runDir, 'attention', 'maps.json');
  if (!existsSync(file)) return undefined;
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as {
      image: { height: number; width: number; channels: number };
      labels: number[];
      attackLabels: number[];
      classNames: string[] | null;
      images: { clean: string[]; triggered: string[] };
      snapshots: AttentionSnapshot[];
    };
    return {
      snapshots: m.snapshots,
      samples: { ...m.image, clean: m.images.clean, triggered: m.images.triggered, labels: m.labels, attackLabels: m.attackLabels, ...(m.classNames ? { classNames: m.classNames } : {}) },
    };
  } catch {
    return undefined;
  }
}

/**
 * A file's name, and the run that made it when it is a run's model (<runs>/<id>/model/x): every run's
 * model is called model.safetensors, so the name alone does not tell a student from its teacher.
 */
export function fileLabel(path: string): string {
  const run = runNameOfModelFile(path);
  return run ? `${basename(path)} (run ${run})` : basename(path);
}

/** A few settings worth seeing next to a run's name. */
export function runFacts(config: Record<string, unknown>): Array<[string, string]> {
  const facts: Array<[string, string]> = [];
  const file = (v: unknown): string | undefined => (typeof v === 'string' ? (v === 'mnist' ? 'built-in MNIST' : fileLabel(v)) : undefined);
  const add = (label: string, value: string | undefined): void => {
    if (value) facts.push([label, value]);
  };
  const arch = config['model'];
  if (config['kind'] === 'train') add('Architecture', arch === 'auto' || arch === undefined ? 'auto (from the data)' : JSON.stringify(arch));
  else add('Model', file(config['student']) ?? file(arch));
  add('Teacher', config['kind'] === 'erase' ? (file(config['teacher']) ?? 'finetuned from the clean data') : undefined);
  add('Data', file(config['data']));
  if (typeof config['cleanRatio'] === 'number') add('Clean subset', `${+(config['cleanRatio'] * 100).toFixed(2)}%`);
  if (typeof config['cleanCount'] === 'number') add('Clean subset', `${config['cleanCount']} images`);
  const training = config['training'] as { epochs?: number; betas?: number[] } | undefined;
  const teacher = config['teacherTraining'] as { epochs?: number } | undefined;
  if (config['kind'] === 'erase' && !config['teacher'] && teacher?.epochs) add('Teacher epochs', String(teacher.epochs));
  if (training?.epochs) add('Epochs', String(training.epochs));
  if (config['kind'] === 'erase' && training?.betas) add('Betas', training.betas.join(', '));
  const backdoor = config['backdoor'] as { trigger?: { name?: string }; targetLabel?: number } | undefined;
  if (backdoor?.trigger?.name) add('Trigger', `${backdoor.trigger.name} → ${backdoor.targetLabel ?? '?'}`);
  return facts;
}
