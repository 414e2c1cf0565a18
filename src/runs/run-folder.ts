// Reads a run folder into what the run panel shows: status.json and config.json for the header, the
// events of metrics.jsonl folded by the one reducer, attention/maps.json for the final maps.
// Runs made by the CLI and by the extension read alike. No vscode import.
import { provenanceFacts } from '../shared/provenance';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { AttentionSnapshot, ResultRow, RunEvent, SampleImages } from '../shared/run-events';
import { EMPTY_RUN_VIEW, reduceRun, type RunView } from '../shared/run-state';
import type { PanelRunInfo, PanelSnapshot } from '../shared/panel-protocol';
import { isResumable, readRunEvents, RunStore, runNameOfModelFile, type BrokenRun, type RunSummary } from './run-store';

/** One run folder, read by its path: the run, or the folder with the reason it cannot be read. */
export function readRunSummary(runDir: string): RunSummary | BrokenRun {
  return new RunStore('', dirname(runDir)).read(basename(runDir));
}

/** A run's view from its folder: its stored events folded, the final maps, and (for older runs) results.json. */
export function replayRun(run: RunSummary): RunView & { readonly problems: readonly string[] } {
  const { events, problems } = readRunEvents(run.dir);
  let view = withPhases(events, run.config).reduce<RunView>(reduceRun, EMPTY_RUN_VIEW);
  const maps = readMaps(run.dir);
  if (maps) view = { ...view, attention: maps.snapshots, samples: maps.samples };
  if (view.table.length === 0) view = { ...view, table: readTable(run) };
  return { ...view, progress: undefined, problems };
}

/** Everything the panel shows for a run folder, or the reason it cannot be read. */
export function readRunSnapshot(runDir: string): PanelSnapshot | { readonly problem: string } {
  const run = readRunSummary(runDir);
  if ('problem' in run) return run;
  const { problems: _problems, ...view } = replayRun(run);
  return { ...view, run: runInfo(run) };
}

/** The phases of runs written by version 0.1.0, whose epoch lines did not say their phase. */
function legacyPhases(config: Record<string, unknown>): ReadonlyArray<{ phase: string; epochs: number }> {
  const teacherEpochs = (config['teacherTraining'] as { epochs?: unknown } | undefined)?.epochs;
  switch (config['kind']) {
    case 'finetune':
      return [{ phase: 'teacher', epochs: Infinity }];
    case 'erase':
      return config['teacher'] || typeof teacherEpochs !== 'number'
        ? [{ phase: 'nad', epochs: Infinity }]
        : [
            { phase: 'teacher', epochs: teacherEpochs },
            { phase: 'nad', epochs: Infinity },
          ];
    default:
      return [{ phase: 'train', epochs: Infinity }];
  }
}

/** Epoch lines of older runs get their phase from the job's plan, in order; newer lines pass through. */
function withPhases(events: readonly RunEvent[], config: Record<string, unknown>): RunEvent[] {
  if (!events.some((e) => e.type === 'epoch' && e.phase === undefined)) return [...events];
  const plan = legacyPhases(config);
  let index = 0;
  return events.map((e) => {
    if (e.type !== 'epoch' || e.phase !== undefined) return e;
    let left = index++;
    let phase = plan.length ? plan[plan.length - 1].phase : 'train';
    for (const p of plan) {
      if (left < p.epochs) {
        phase = p.phase;
        break;
      }
      left -= p.epochs;
    }
    return { ...e, phase, epochs: e.epochs ?? 0 };
  });
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
    provenance: provenanceFacts(run.config['provenance']),
    resumable: isResumable(run),
  };
}

const MODEL_OF_KIND: Readonly<Record<string, string>> = {
  train: 'trained',
  finetune: 'finetuned',
  erase: 'erased',
  defend: 'defended',
  eval: 'evaluated',
  attention: 'evaluated',
  imageAttention: 'evaluated',
};

/** results.json when the run wrote one; else the headline numbers of status.json. */
function readTable(run: RunSummary): ResultRow[] {
  const file = join(run.dir, 'results.json');
  if (existsSync(file)) {
    try {
      const table = (JSON.parse(readFileSync(file, 'utf8')) as { table?: unknown }).table;
      if (Array.isArray(table))
        return table.filter(
          (r): r is ResultRow =>
            typeof r === 'object' && r !== null && typeof r.model === 'string' && typeof r.acc === 'number' && typeof r.asr === 'number',
        );
    } catch {
      // fall back to status.json
    }
  }
  const { acc, asr } = run.status;
  return acc !== undefined && asr !== undefined ? [{ model: MODEL_OF_KIND[run.status.kind] ?? run.status.kind, acc, asr }] : [];
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
      samples: {
        ...m.image,
        clean: m.images.clean,
        triggered: m.images.triggered,
        labels: m.labels,
        attackLabels: m.attackLabels,
        ...(m.classNames ? { classNames: m.classNames } : {}),
      },
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
  const attack = config['attack'] as { name?: unknown } | undefined;
  if (typeof config['method'] === 'string') add('Defense', config['method']);
  if (typeof attack?.name === 'string') add('Attack', attack.name);
  if (config['kind'] === 'train')
    add('Architecture', arch === 'auto' || arch === undefined ? 'auto (from the data)' : JSON.stringify(arch));
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
