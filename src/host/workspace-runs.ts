// The runs of the open workspace folders, read from their run folders (the one listing the Runs view,
// the pickers and the history page share).
import * as vscode from 'vscode';
import { RunStore, type BrokenRun, type RunSummary } from '../runs/run-store';
import { runsDirFor } from './settings';

export interface RunRef {
  readonly folder: vscode.WorkspaceFolder | undefined;
  readonly run: RunSummary;
}

export interface BrokenRef {
  readonly folder: vscode.WorkspaceFolder | undefined;
  readonly broken: BrokenRun;
}

/** Every run (newest first) and unreadable run folder of the open workspace folders. */
export function workspaceRuns(): { runs: RunRef[]; broken: BrokenRef[] } {
  const runs: RunRef[] = [];
  const broken: BrokenRef[] = [];
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    if (folder.uri.scheme !== 'file') continue;
    const listed = new RunStore(folder.uri.fsPath, runsDirFor(folder)).list();
    runs.push(...listed.runs.map((run) => ({ folder, run })));
    broken.push(...listed.broken.map((b) => ({ folder, broken: b })));
  }
  runs.sort((a, b) => (a.run.status.startedAt < b.run.status.startedAt ? 1 : a.run.status.startedAt > b.run.status.startedAt ? -1 : 0));
  return { runs, broken };
}
