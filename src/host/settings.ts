// The extension's settings (package.json contributes.configuration), read in one place.
import * as vscode from 'vscode';
import { isAbsolute, relative, resolve } from 'node:path';
import type { BackendPreference } from '../engine/backend';
import { RUNS_SUBDIR } from '../runs/run-store';
import { DEFAULT_MEMORY_LIMIT_MB } from '../runs/memory-limit';
import type { SlurmSettings } from '../shared/worker-protocol';

export interface NadSettings {
  readonly backend: BackendPreference;
  /** Runs folder as configured: relative to the workspace folder, or absolute. */
  readonly runsFolder: string;
  readonly defaultEpochs: number;
  readonly defaultBatchSize: number;
  readonly maxConcurrentRuns: number;
  /** The run worker's memory limit, MB (JavaScript heap and wasm heap, each). */
  readonly workerMemoryLimitMb: number;
}

export function nadSettings(scope?: vscode.ConfigurationScope): NadSettings {
  const c = vscode.workspace.getConfiguration('nad', scope);
  const positive = (key: string, dflt: number): number => {
    const v = c.get<number>(key, dflt);
    return Number.isInteger(v) && v >= 1 ? v : dflt;
  };
  return {
    backend: c.get<BackendPreference>('backend', 'auto'),
    runsFolder: c.get<string>('runsFolder', RUNS_SUBDIR).trim() || RUNS_SUBDIR,
    defaultEpochs: positive('defaultEpochs', 20),
    defaultBatchSize: positive('defaultBatchSize', 64),
    maxConcurrentRuns: positive('maxConcurrentRuns', 1),
    workerMemoryLimitMb: positive('workerMemoryLimitMB', DEFAULT_MEMORY_LIMIT_MB),
  };
}

/** The sbatch options when `nad.executor` is `slurm`; undefined for the local queue. */
export function slurmSettings(scope?: vscode.ConfigurationScope): SlurmSettings | undefined {
  const c = vscode.workspace.getConfiguration('nad', scope);
  if (c.get<string>('executor', 'local') !== 'slurm') return undefined;
  const text = (key: string): string | undefined => c.get<string>(key, '').trim() || undefined;
  const gpus = c.get<number>('slurm.gpus', 0);
  const extra = c.get<unknown>('slurm.extraArgs', []);
  return {
    partition: text('slurm.partition'),
    gpus: Number.isInteger(gpus) && gpus > 0 ? gpus : undefined,
    time: text('slurm.time'),
    extraArgs: Array.isArray(extra) ? extra.filter((a): a is string => typeof a === 'string' && a.trim() !== '') : [],
  };
}

/** Where a workspace folder's runs live (`nad.runsFolder`, default .nad/runs). */
export function runsDirFor(folder: vscode.WorkspaceFolder): string {
  return resolve(folder.uri.fsPath, nadSettings(folder.uri).runsFolder);
}

/** A file-watcher pattern for a workspace folder's runs. */
export function runsPatternFor(folder: vscode.WorkspaceFolder): vscode.RelativePattern {
  const dir = runsDirFor(folder);
  const rel = relative(folder.uri.fsPath, dir);
  if (rel && !rel.startsWith('..') && !isAbsolute(rel)) return new vscode.RelativePattern(folder, `${rel.split('\\').join('/')}/**`);
  return new vscode.RelativePattern(vscode.Uri.file(dir), '**');
}

/** The workspace folder a file belongs to, else the first one. */
export function folderFor(uri?: vscode.Uri): vscode.WorkspaceFolder | undefined {
  return (uri && vscode.workspace.getWorkspaceFolder(uri)) ?? vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file');
}

export const SETTINGS_QUERY = '@ext:nad-vscode.nad-vscode';

export function openSettings(key?: string): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openSettings', key ? `nad.${key}` : SETTINGS_QUERY);
}
