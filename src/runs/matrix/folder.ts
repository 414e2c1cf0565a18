// A matrix folder (.nad/matrices/<id>/) read by path: its definition, which run folder is which cell, and
// every cell's state and numbers from the run folders themselves, so the CLI, the worker and the extension's
// matrix page (which never loads the engine) see the same thing, live or after the fact.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError } from '../../engine/types';
import { RunStore, RUNS_SUBDIR, writeFileAtomic, type RunSummary } from '../run-store';
import { cellKey, matrixCells, type MatrixCell, type MatrixSpec } from './cells';

/** What a cell is now: its numbers, or why it has none. */
export interface CellOutcome {
  readonly cell: MatrixCell;
  /** Run folder id under the runs folder. */
  readonly runId?: string;
  /** `pending`: not started; `running`: its run is being written now; `skipped`: its attacked model did not train. */
  readonly state: 'finished' | 'failed' | 'skipped' | 'running' | 'pending';
  readonly acc?: number;
  readonly asr?: number;
  readonly ra?: number;
  readonly der?: number;
  readonly error?: string;
  /** Kept from an earlier sitting (not run again). */
  readonly cached?: boolean;
  readonly seconds?: number;
  /** Epochs done, while it runs. */
  readonly lastEpoch?: number;
}

export interface MatrixState {
  readonly version: 1;
  /** cellKey -> run folder id. */
  readonly cells: Record<string, string>;
  /** cellKey -> why it failed before its run folder existed (a config the builder refused...). */
  readonly errors: Record<string, string>;
}

/** Where a runs folder keeps its matrices: next to it (`.nad/matrices` beside `.nad/runs`). */
export function matricesDir(where: { readonly cwd: string; readonly runsDir?: string }): string {
  return join(dirname(where.runsDir ?? join(where.cwd, RUNS_SUBDIR)), 'matrices');
}

export function readMatrixState(dir: string): MatrixState {
  const file = join(dir, 'cells.json');
  if (!existsSync(file)) return { version: 1, cells: {}, errors: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`cells.json is not valid JSON (${(e as Error).message}); move it aside to start the matrix afresh`, file);
  }
  const { cells, errors = {} } = (parsed ?? {}) as { cells?: unknown; errors?: unknown };
  const strings = (v: unknown): v is Record<string, string> =>
    typeof v === 'object' && v !== null && Object.values(v).every((x) => typeof x === 'string');
  if (!strings(cells) || !strings(errors))
    throw new InputError('cells.json must hold {"version": 1, "cells": {"<cell>": "<run folder>"}, "errors": {"<cell>": "<why>"}}', file);
  return { version: 1, cells: { ...cells }, errors: { ...errors } };
}

/** A cell's outcome from its run folder's status. */
/** A matrix's folder opened to run it: its definition written, its cell map read; `save` writes the map back. */
export interface OpenMatrix {
  readonly dir: string;
  readonly store: RunStore;
  readonly state: MatrixState;
  save(): void;
}

/** Opens (or creates) matrix `id`'s folder for a run here or on Slurm: matrix.json and cells.json written atomically. */
export function openMatrixFolder(id: string, spec: MatrixSpec, where: { readonly cwd: string; readonly runsDir?: string }): OpenMatrix {
  const dir = join(matricesDir(where), id);
  const store = new RunStore(where.cwd, where.runsDir);
  writeFileAtomic(join(dir, 'matrix.json'), JSON.stringify(spec, null, 2) + '\n');
  const state = readMatrixState(dir);
  const save = (): void => writeFileAtomic(join(dir, 'cells.json'), JSON.stringify(state, null, 2) + '\n');
  save();
  return { dir, store, state, save };
}

export function outcomeOf(cell: MatrixCell, run: RunSummary, cached: boolean): CellOutcome {
  const s = run.status;
  const seconds = s.endedAt ? (Date.parse(s.endedAt) - Date.parse(s.startedAt)) / 1000 : undefined;
  if (s.state === 'running') return { cell, runId: run.id, state: 'running', lastEpoch: s.lastEpoch };
  if (s.state !== 'finished') return { cell, runId: run.id, state: 'failed', error: s.error ?? `the run is ${s.state}`, cached, seconds };
  return { cell, runId: run.id, state: 'finished', acc: s.acc, asr: s.asr, ra: s.ra, der: s.der, cached, seconds };
}

export interface MatrixFolder {
  readonly id: string;
  readonly dir: string;
  readonly spec: MatrixSpec;
  readonly runsDir: string;
  readonly outcomes: readonly CellOutcome[];
  /** When matrix.json was last written (the matrix last started). */
  readonly modified: number;
}

/** Reads a matrix folder and the run folders of its cells; every problem names the file. */
export function readMatrixFolder(dir: string, runsDir: string): MatrixFolder {
  const file = join(dir, 'matrix.json');
  let spec: MatrixSpec;
  try {
    spec = JSON.parse(readFileSync(file, 'utf8')) as MatrixSpec;
  } catch (e) {
    throw new InputError(`cannot read the matrix (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
  if (!Array.isArray(spec?.attacks) || !Array.isArray(spec.defenses) || !Array.isArray(spec.seeds))
    throw new InputError('matrix.json needs "attacks", "defenses" and "seeds" lists', file);
  const state = readMatrixState(dir);
  const store = new RunStore('', runsDir);
  const trained = new Map<string, CellOutcome>();
  const outcomes = matrixCells(spec).map((cell): CellOutcome => {
    const id = state.cells[cellKey(cell)];
    const read = id ? store.read(id) : undefined;
    let o: CellOutcome;
    if (read && !('problem' in read)) o = outcomeOf(cell, read, false);
    else if (read) o = { cell, runId: id, state: 'failed', error: read.problem };
    else if (state.errors[cellKey(cell)]) o = { cell, state: 'failed', error: state.errors[cellKey(cell)] };
    else {
      const parent = cell.defense === undefined ? undefined : trained.get(cellKey({ attack: cell.attack, seed: cell.seed }));
      o =
        parent && parent.state === 'failed'
          ? { cell, state: 'skipped', error: 'the attacked model did not train' }
          : { cell, runId: id, state: 'pending' };
    }
    if (cell.defense === undefined) trained.set(cellKey(cell), o);
    return o;
  });
  const id = dir.split(/[\\/]/).pop() ?? dir;
  const modified = statSync(file).mtimeMs;
  return { id, dir, spec, runsDir, outcomes, modified };
}

/** The matrices next to a runs folder, newest first; unreadable ones with their problem. */
export function listMatrices(
  runsDir: string,
): Array<MatrixFolder | { readonly id: string; readonly dir: string; readonly problem: string }> {
  const root = join(dirname(runsDir), 'matrices');
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => {
      const dir = join(root, d.name);
      try {
        return readMatrixFolder(dir, runsDir);
      } catch (e) {
        return { id: d.name, dir, problem: (e as Error).message };
      }
    })
    .sort((a, b) => ('modified' in b ? b.modified : 0) - ('modified' in a ? a.modified : 0));
}
