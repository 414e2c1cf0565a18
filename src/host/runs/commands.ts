// Commands on one run folder, from the Runs view's context menu, the run panel and the palette:
// open, cancel, resume, re-run, reveal, delete. A command run from the palette asks which run.
import * as vscode from 'vscode';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isResumable } from '../../runs/run-store';
import { RunStore, type RunSummary } from '../../runs/run-store';
import { parseConfigFile, ConfigFileError } from '../../runs/config-file';
import { readRunSummary } from '../../runs/run-folder';
import type { RunManager, RunTask } from './manager';
import type { RunPanels } from './panel';
import { folderFor } from '../settings';
import { workspaceRuns } from '../workspace-runs';
import { cancelSlurmRun } from '../slurm-state';

/** A run folder from a command argument: a folder path, a Runs view node, or a URI. */
export function runDirFromArg(arg: unknown): string | undefined {
  if (typeof arg === 'string') return arg;
  if (arg instanceof vscode.Uri) return arg.fsPath;
  if (typeof arg === 'object' && arg !== null) {
    const node = arg as { type?: unknown; run?: { dir?: unknown }; broken?: { dir?: unknown } };
    if (node.type === 'run' && typeof node.run?.dir === 'string') return node.run.dir;
    if (node.type === 'broken' && typeof node.broken?.dir === 'string') return node.broken.dir;
  }
  return undefined;
}

async function pickRun(placeholder: string, filter: (r: RunSummary) => boolean = () => true): Promise<string | undefined> {
  const runs = workspaceRuns()
    .runs.map((r) => r.run)
    .filter(filter);
  if (runs.length === 0) {
    void vscode.window.showInformationMessage(`NAD: no runs to choose from (${placeholder.toLowerCase()}).`);
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(
    runs.map((r) => ({
      label: typeof r.config['name'] === 'string' ? (r.config['name'] as string) : r.id,
      description: `${r.status.kind} · ${r.status.state}${r.status.acc !== undefined ? ` · ACC ${r.status.acc.toFixed(1)}% · ASR ${(r.status.asr ?? NaN).toFixed(1)}%` : ''}`,
      detail: r.id,
      dir: r.dir,
    })),
    { placeHolder: placeholder, matchOnDetail: true },
  );
  return pick?.dir;
}

export interface RunCommandsHost {
  readonly manager: RunManager;
  readonly panels: RunPanels;
  readonly refreshRuns: () => void;
  readonly requireTrust: (what: string) => boolean;
}

function workspaceFolderOf(runDir: string): vscode.WorkspaceFolder | undefined {
  return folderFor(vscode.Uri.file(runDir));
}

export function openRun(host: RunCommandsHost, arg: unknown): Promise<void> {
  return (async () => {
    const dir = runDirFromArg(arg) ?? (await pickRun('Open which run?'));
    if (dir) host.panels.open(dir);
  })();
}

export async function cancelRun(host: RunCommandsHost, arg: unknown): Promise<void> {
  const dir = runDirFromArg(arg);
  let task: RunTask | undefined = dir ? host.manager.taskFor(dir) : undefined;
  if (!dir) {
    const active = host.manager.active();
    if (active.length === 0) {
      void vscode.window.showInformationMessage('NAD: no run is running or queued in this window.');
      return;
    }
    const pick =
      active.length === 1
        ? { task: active[0] }
        : await vscode.window.showQuickPick(
            active.map((t) => ({ label: t.request.title, description: t.state, task: t })),
            { placeHolder: 'Cancel which run?' },
          );
    task = pick?.task;
    if (!task) return;
  }
  if (!task || (task.state !== 'running' && task.state !== 'queued')) {
    if (dir && (await cancelSlurmRun(dir))) return;
    const s = dir ? readRunSummary(dir) : undefined;
    const owner =
      s && !('problem' in s) && s.status.state === 'running'
        ? ` It is run by another process (pid ${s.status.pid ?? '?'}); stop it there (Ctrl+C for the nad CLI).`
        : '';
    void vscode.window.showInformationMessage(`NAD: this run is not running in this window.${owner}`);
    return;
  }
  host.manager.cancel(task);
}

export async function resumeRun(host: RunCommandsHost, arg: unknown): Promise<RunTask | undefined> {
  if (!host.requireTrust('Resuming a run')) return undefined;
  const dir = runDirFromArg(arg) ?? (await pickRun('Resume which run?', (r) => isResumable(r)));
  if (!dir) return undefined;
  const s = readRunSummary(dir);
  if ('problem' in s) {
    void vscode.window.showErrorMessage(`NAD: ${dir}: cannot be resumed, the run folder cannot be read (${s.problem}).`);
    return undefined;
  }
  const live = host.manager.taskFor(dir);
  if (!isResumable(s) || (live && (live.state === 'running' || live.state === 'queued'))) {
    void vscode.window.showErrorMessage(
      `NAD: run ${s.id} cannot be resumed: it is ${live?.state ?? s.status.state}${isResumable(s) ? '' : ` (only interrupted, cancelled or failed train, finetune and erase runs can)`}.`,
    );
    return undefined;
  }
  const folder = workspaceFolderOf(dir);
  const name = typeof s.config['name'] === 'string' ? (s.config['name'] as string) : s.id;
  const task = host.manager.start({
    title: `Resume ${name}`,
    job: { kind: 'resume', runDir: dir },
    cwd: folder?.uri.fsPath ?? dirname(dir),
    runsDir: dirname(dir),
    openPanel: !host.panels.find(dir),
  });
  host.panels.find(dir)?.panel.reveal(undefined, true);
  return task;
}

export async function rerun(host: RunCommandsHost, arg: unknown): Promise<RunTask | undefined> {
  if (!host.requireTrust('Running a job')) return undefined;
  const dir = runDirFromArg(arg) ?? (await pickRun('Run which run again (same config)?'));
  if (!dir) return undefined;
  const folder = workspaceFolderOf(dir);
  const cwd = folder?.uri.fsPath ?? dirname(dir);
  const file = join(dir, 'config.json');
  try {
    // Paths in a run's config are as the CLI or the wizard gave them: relative ones are the workspace folder's.
    const config = parseConfigFile(join(cwd, basename(file)), readFileSync(file, 'utf8'));
    return host.manager.start({
      title: `Re-run ${config.name ?? basename(dir)}`,
      job: { kind: 'job', config },
      cwd,
      runsDir: dirname(dir),
    });
  } catch (e) {
    const problem = e instanceof ConfigFileError ? e.problem : (e as Error).message;
    void vscode.window
      .showErrorMessage(`NAD: ${file}: cannot re-run this config (${problem}).`, 'Open Config File')
      .then((a) => a && vscode.window.showTextDocument(vscode.Uri.file(file)));
    return undefined;
  }
}

export async function revealRunFolder(arg: unknown): Promise<void> {
  const dir = runDirFromArg(arg) ?? (await pickRun('Reveal which run folder?'));
  if (!dir || !existsSync(dir)) return;
  const uri = vscode.Uri.file(dir);
  await vscode.commands.executeCommand(workspaceFolderOf(dir) ? 'revealInExplorer' : 'revealFileInOS', uri);
}

export async function deleteRun(host: RunCommandsHost, arg: unknown): Promise<boolean> {
  const dir = runDirFromArg(arg) ?? (await pickRun('Delete which run?', (r) => r.status.state !== 'running'));
  if (!dir) return false;
  const live = host.manager.taskFor(dir);
  if (live && (live.state === 'running' || live.state === 'queued')) {
    void vscode.window
      .showErrorMessage(`NAD: ${basename(dir)} is running; cancel it before deleting it.`, 'Cancel Run')
      .then((a) => a && host.manager.cancel(live));
    return false;
  }
  const s = readRunSummary(dir);
  const name = 'problem' in s ? basename(dir) : typeof s.config['name'] === 'string' ? (s.config['name'] as string) : s.id;
  const ok = await vscode.window.showWarningMessage(
    `Delete the run "${name}" and its folder (models, metrics, attention maps)?`,
    { modal: true, detail: dir },
    'Delete',
  );
  if (ok !== 'Delete') return false;
  host.panels.find(dir)?.panel.dispose();
  await new RunStore('', dirname(dir)).delete(basename(dir));
  host.refreshRuns();
  return true;
}
