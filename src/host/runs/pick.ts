// Finding runs for commands: from what VS Code passes (a Runs tree row, several rows, a file Uri, a run
// folder path) or, when nothing is passed, from a quick pick over every workspace folder's runs.
import * as vscode from 'vscode';
import { relative, sep } from 'node:path';
import { readRunSummary } from '../../runs/run-folder';
import { runDescription, runLabel, type RunsNode } from '../history/runs-tree';
import { runsDirFor } from '../settings';
import { workspaceRuns, type BrokenRef, type RunRef } from '../workspace-runs';

export { workspaceRuns, type BrokenRef, type RunRef };

/** The run folder holding `file`: the folder right under a workspace folder's runs folder, or under a `.nad/runs`. */
export function runFolderOfFile(file: string): string | undefined {
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    if (folder.uri.scheme !== 'file') continue;
    const rel = relative(runsDirFor(folder), file);
    const first = rel.split(sep)[0];
    if (rel && first && first !== '..' && !rel.startsWith(sep) && !/^[A-Za-z]:/.test(rel)) return `${runsDirFor(folder)}${sep}${first}`;
  }
  const parts = file.split(sep);
  for (let i = parts.length - 2; i >= 1; i--) {
    if (parts[i] === 'runs' && parts[i - 1] === '.nad' && i + 1 < parts.length) return parts.slice(0, i + 2).join(sep);
  }
  return undefined;
}

function folderOf(dir: string): vscode.WorkspaceFolder | undefined {
  return vscode.workspace.getWorkspaceFolder(vscode.Uri.file(dir));
}

function isRunsNode(arg: unknown): arg is RunsNode {
  return (
    typeof arg === 'object' && arg !== null && 'type' in arg && ((arg as RunsNode).type === 'run' || (arg as RunsNode).type === 'broken')
  );
}

/** The run a command argument designates: a tree row, a Uri or path inside a run folder. */
export function runFromArg(arg: unknown): RunRef | BrokenRef | undefined {
  if (isRunsNode(arg)) return arg.type === 'run' ? { folder: arg.folder, run: arg.run } : { folder: arg.folder, broken: arg.broken };
  const path = arg instanceof vscode.Uri ? (arg.scheme === 'file' ? arg.fsPath : undefined) : typeof arg === 'string' ? arg : undefined;
  if (!path) return undefined;
  const dir = runFolderOfFile(path.replace(/[\\/]+$/, ''));
  if (!dir) return undefined;
  const read = readRunSummary(dir);
  return 'problem' in read ? { folder: folderOf(dir), broken: read } : { folder: folderOf(dir), run: read };
}

/** Runs designated by a tree command's (clicked, selected) arguments, without duplicates. */
export function runsFromArgs(clicked: unknown, selected: unknown): Array<RunRef | BrokenRef> {
  const all = Array.isArray(selected) && selected.length > 0 ? (selected as unknown[]) : clicked === undefined ? [] : [clicked];
  const seen = new Set<string>();
  const out: Array<RunRef | BrokenRef> = [];
  for (const a of all) {
    const ref = runFromArg(a);
    const dir = ref ? ('run' in ref ? ref.run.dir : ref.broken.dir) : undefined;
    if (ref && dir && !seen.has(dir)) {
      seen.add(dir);
      out.push(ref);
    }
  }
  return out;
}

export interface RunQuickPickItem extends vscode.QuickPickItem {
  readonly ref: RunRef;
}

/** A quick pick row for a run: its label, "kind · state · ACC · ASR", and where it is. */
export function runPickItem(ref: RunRef): RunQuickPickItem {
  const multiRoot = (vscode.workspace.workspaceFolders?.length ?? 0) > 1;
  return {
    label: runLabel(ref.run),
    description: runDescription(ref.run),
    detail: multiRoot && ref.folder ? `${ref.folder.name} · ${ref.run.id}` : ref.run.id,
    ref,
  };
}

/** Ask for one or more runs; `filter` narrows the list (with `emptyMessage` when nothing is left). */
export async function pickRuns(opts: {
  title: string;
  many: boolean;
  filter?: (r: RunRef) => boolean;
  emptyMessage: string;
  minimum?: number;
}): Promise<RunRef[]> {
  const runs = workspaceRuns().runs.filter(opts.filter ?? (() => true));
  if (runs.length === 0) {
    void vscode.window.showInformationMessage(opts.emptyMessage);
    return [];
  }
  const items = runs.map(runPickItem);
  if (!opts.many) {
    const picked = await vscode.window.showQuickPick(items, { title: opts.title, matchOnDescription: true, matchOnDetail: true });
    return picked ? [picked.ref] : [];
  }
  const picked = await vscode.window.showQuickPick(items, {
    title: opts.title,
    canPickMany: true,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!picked) return [];
  if (opts.minimum && picked.length < opts.minimum) {
    void vscode.window.showWarningMessage(`Pick at least ${opts.minimum} runs (you picked ${picked.length}).`);
    return [];
  }
  return picked.map((p) => p.ref);
}

/** A path for messages: relative to its workspace folder when inside one. */
export function displayPath(file: string): string {
  const folder = folderOf(file);
  if (!folder) return file;
  const rel = relative(folder.uri.fsPath, file);
  return (vscode.workspace.workspaceFolders?.length ?? 0) > 1 ? `${folder.name}/${rel}` : rel;
}
