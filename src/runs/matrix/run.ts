// Running a matrix: every cell is an ordinary run folder (train, then defend), run one after the other.
// The matrix folder (.nad/matrices/<id>/) holds the definition and which run folder is which cell, written
// atomically as soon as a cell's run starts. Running the same matrix again keeps finished cells, resumes an
// interrupted one from its last saved epoch, and starts failed, cancelled or missing ones afresh.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { attackNamed } from '../../engine/attacks/registry';
import { checkParams } from '../../engine/params';
import { PredictionMemo } from '../../engine/prediction-memo';
import { RunCancelledError } from '../../engine/train';
import { InputError } from '../../engine/types';
import type { RunEvent } from '../../shared/run-events';
import { formatDuration } from '../../shared/format';
import { buildJobConfig } from '../config-file';
import type { JobConfig } from '../config';
import { runJob, type JobContext, type JobResult } from '../jobs';
import { prepareResume } from '../resume';
import { isResumable, MODEL_FILES, writeFileAtomic } from '../run-store';
import { openMatrixFolder, outcomeOf, type CellOutcome } from './folder';
import { cellKey, matrixCells, matrixId, type MatrixCell, type MatrixSpec } from './spec';

export type { CellOutcome } from './folder';
export { matricesDir } from './folder';

export interface MatrixProgress {
  readonly index: number;
  readonly total: number;
  readonly cell: MatrixCell;
  /** `start`: a fresh run; `resume`: an interrupted one continues; `cached`: kept; `end`: it ended (see outcome). */
  readonly what: 'start' | 'resume' | 'cached' | 'end';
  readonly outcome?: CellOutcome;
}

export interface MatrixContext extends JobContext {
  readonly onProgress?: (p: MatrixProgress) => void;
}

export interface MatrixResult {
  readonly id: string;
  readonly dir: string;
  readonly spec: MatrixSpec;
  readonly outcomes: readonly CellOutcome[];
}

/** One line per cell (the CLI's stderr, the NAD log): what runs, what was kept, how it ended. */
export function describeProgress(p: MatrixProgress): string | undefined {
  const at = `[${p.index + 1}/${p.total}] ${cellKey(p.cell)}`;
  switch (p.what) {
    case 'start':
      return `${at}: running`;
    case 'resume':
      return `${at}: resuming the interrupted run`;
    case 'cached':
      return `${at}: kept from an earlier sitting (ACC ${p.outcome?.acc?.toFixed(2)}, ASR ${p.outcome?.asr?.toFixed(2)})`;
    case 'end': {
      const o = p.outcome;
      if (!o || o.cached) return undefined;
      if (o.state !== 'finished') return `${at}: ${o.state}: ${o.error ?? ''}`;
      const took = o.seconds !== undefined ? ` in ${formatDuration(o.seconds)}` : '';
      return `${at}: ACC ${o.acc?.toFixed(2)}, ASR ${o.asr?.toFixed(2)}${o.der !== undefined ? `, DER ${o.der.toFixed(3)}` : ''}${took}`;
    }
    default:
      return undefined;
  }
}

/**
 * The trigger a trained cell made while poisoning (Trojan's optimised one, kept as trigger.json in its run
 * folder), which its defenses are scored with; undefined when the attack's trigger is fixed by its parameters.
 */
export function madeTrigger(trainedModel: string): Record<string, unknown> | undefined {
  const file = join(dirname(dirname(trainedModel)), 'trigger.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new InputError(`cannot read the trigger the attack made: ${(e as Error).message}`, file);
  }
}

/** The job a cell runs, built by the one config builder (so it is checked like any config file). */
export function cellConfig(spec: MatrixSpec, cell: MatrixCell, trainedModel: string | undefined, id: string): JobConfig {
  const choice = spec.attacks.find((a) => a.name === cell.attack);
  const attack = attackNamed(cell.attack);
  if (!choice || !attack) throw new InputError(`matrix ${spec.name}: unknown attack '${cell.attack}'`);
  const params = checkParams(attack.params, choice.params, `attack ${attack.name}`);
  const backdoor = {
    trigger: attack.trigger(params, { data: spec.data, targetLabel: spec.target }),
    targetType: attack.defaults.targetType,
    targetLabel: spec.target,
    injectPortion: attack.defaults.injectPortion,
  };
  const common = { backend: spec.backend, seed: cell.seed, test: spec.test, backdoor, matrix: { id, cell: cellKey(cell) } };
  const where = `matrix ${spec.name}, cell ${cellKey(cell)}`;
  if (cell.defense === undefined) {
    return buildJobConfig(
      {
        ...common,
        kind: 'train',
        name: `${spec.name}-${cell.attack}-s${cell.seed}`,
        data: spec.data,
        model: spec.arch,
        attack: { name: attack.name, params: choice.params },
        training: { ...spec.training, seed: cell.seed },
      },
      where,
    );
  }
  const defense = spec.defenses.find((d) => d.name === cell.defense);
  if (!defense || !trainedModel) throw new InputError(`${where}: no trained model to defend`);
  const made = madeTrigger(trainedModel);
  return buildJobConfig(
    {
      ...common,
      ...(made ? { backdoor: { ...backdoor, trigger: made } } : {}),
      kind: 'defend',
      name: `${spec.name}-${cell.attack}-${defense.name}-s${cell.seed}`,
      method: defense.name,
      params: defense.params,
      model: trainedModel,
      data: spec.data,
      ...(spec.cleanCount !== undefined ? { cleanCount: spec.cleanCount } : { cleanRatio: spec.cleanRatio }),
      training: { ...spec.defenseTraining, ...defense.training, seed: cell.seed },
    },
    where,
  );
}

/** Runs (or continues) a matrix; each cell's outcome is reported as it ends. Cancelling stops after the running cell's epoch. */
export async function runMatrix(spec: MatrixSpec, ctx: MatrixContext): Promise<MatrixResult> {
  const id = matrixId(spec);
  const { dir, store, state, save } = openMatrixFolder(id, spec, ctx);
  const cells = matrixCells(spec);
  const outcomes: CellOutcome[] = [];
  const trained = new Map<string, CellOutcome>();
  // One memo for the sitting: a defense's "backdoored" row reads the predictions its attack's run made with the same weights.
  const memo = ctx.memo ?? new PredictionMemo();
  for (const [index, cell] of cells.entries()) {
    const key = cellKey(cell);
    const report = (what: MatrixProgress['what'], outcome?: CellOutcome): void =>
      ctx.onProgress?.({ index, total: cells.length, cell, what, outcome });
    const trainKey = cellKey({ attack: cell.attack, seed: cell.seed });
    const parent = cell.defense === undefined ? undefined : trained.get(trainKey);
    if (parent && parent.state !== 'finished') {
      const skipped: CellOutcome = { cell, state: 'skipped', error: `the attacked model (${trainKey}) did not train` };
      outcomes.push(skipped);
      report('end', skipped);
      continue;
    }
    const modelFile = parent?.runId ? join(store.runsDir, parent.runId, MODEL_FILES.model) : undefined;
    const earlier = state.cells[key] ? store.read(state.cells[key]) : undefined;
    let outcome: CellOutcome;
    if (earlier && !('problem' in earlier) && earlier.status.state === 'finished') {
      outcome = outcomeOf(cell, earlier, true);
      report('cached', outcome);
    } else {
      const started = Date.now();
      let result: JobResult | undefined;
      let error: string | undefined;
      try {
        if (earlier && !('problem' in earlier) && isResumable(earlier)) {
          report('resume');
          const { config, point } = await prepareResume(earlier.dir);
          result = await runJob(config, { ...ctx, memo, resume: point });
        } else {
          report('start');
          const config = cellConfig(spec, cell, modelFile, id);
          const onEvent = (e: RunEvent): void => {
            if (e.type === 'started') {
              state.cells[key] = basename(e.runDir);
              delete state.errors[key];
              save();
            }
            ctx.onEvent?.(e);
          };
          result = await runJob(config, { ...ctx, memo, onEvent });
        }
      } catch (e) {
        if (e instanceof RunCancelledError || ctx.signal?.aborted) throw e;
        error = (e as Error).message;
      }
      const runId = state.cells[key];
      if (!runId && error) {
        state.errors[key] = error;
        save();
      }
      const read = runId ? store.read(runId) : undefined;
      outcome =
        read && !('problem' in read)
          ? outcomeOf(cell, read, false)
          : { cell, runId, state: 'failed', error: error ?? 'the run left no readable folder', seconds: (Date.now() - started) / 1000 };
      if (result && outcome.state === 'finished' && outcome.der === undefined && result.der !== undefined)
        outcome = { ...outcome, der: result.der };
    }
    if (cell.defense === undefined) trained.set(trainKey, outcome);
    outcomes.push(outcome);
    report('end', outcome);
  }
  writeFileAtomic(join(dir, 'outcomes.json'), JSON.stringify({ version: 1, outcomes }, null, 2) + '\n');
  return { id, dir, spec, outcomes };
}
