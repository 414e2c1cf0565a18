// "Show Attention Maps" on a PNG/JPEG: pick the model(s) and the trigger, have the worker compute the maps
// (src/runs/jobs/image-attention.ts, never in the extension host), then open the run's maps.json.
import * as vscode from 'vscode';
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ImageAttentionConfig } from '../../runs/config';
import { PAPER_DEFAULTS, TRIGGER_NAMES, type TargetType, type TriggerSpec } from '../../engine/triggers/spec';
import { runLabel } from '../history/runs-tree';
import { displayPath, workspaceRuns, type RunRef } from '../runs/pick';
import { runsDirFor } from '../settings';
import type { RunManager } from '../runs/manager';

export interface ImageAttentionRequest {
  readonly config: ImageAttentionConfig;
  /** Workspace folder the run works in (relative paths are its). */
  readonly cwd: string;
  /** Where the run folder goes (the `nad.runsFolder` setting). */
  readonly runsDir: string;
}

/** Runs the job in the worker and resolves with the maps file it wrote; rejects with the job's error. */
export type StartImageAttention = (
  request: ImageAttentionRequest,
  token: vscode.CancellationToken,
) => Promise<{ readonly mapsFile: string }>;

interface ModelItem extends vscode.QuickPickItem {
  readonly file?: string;
  readonly run?: RunRef;
  readonly browse?: true;
}

interface Backdoor {
  readonly trigger: TriggerSpec;
  readonly targetType: TargetType;
  readonly targetLabel: number;
}

/** The backdoor a run was trained or measured with, from its config.json, if it names one. */
function backdoorOf(run: RunRef | undefined): Backdoor | undefined {
  const b = run?.run.config['backdoor'];
  if (typeof b !== 'object' || b === null) return undefined;
  const { trigger, targetType, targetLabel } = b as Record<string, unknown>;
  if (typeof trigger !== 'object' || trigger === null || typeof (trigger as TriggerSpec).name !== 'string') return undefined;
  if (typeof targetLabel !== 'number' || !['all2one', 'all2all', 'cleanLabel'].includes(String(targetType))) return undefined;
  return { trigger: trigger as TriggerSpec, targetType: targetType as TargetType, targetLabel };
}

async function modelItems(): Promise<ModelItem[]> {
  const items: ModelItem[] = [];
  const seen = new Set<string>();
  const runs = workspaceRuns().runs.filter((r) => r.run.status.state === 'finished');
  for (const run of runs) {
    const dir = join(run.run.dir, 'model');
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.safetensors'))) {
      const file = join(dir, f);
      seen.add(file);
      items.push({ label: `${runLabel(run.run)} · ${f}`, description: `${run.run.status.kind} run`, detail: displayPath(file), file, run });
    }
  }
  const found = await vscode.workspace.findFiles('**/*.{pth,pt,safetensors,tar}', '**/{node_modules,.git}/**', 200);
  for (const uri of found) {
    if (uri.scheme !== 'file' || seen.has(uri.fsPath) || (uri.path.endsWith('.tar') && !uri.path.endsWith('.pth.tar'))) continue;
    items.push({ label: basename(uri.fsPath), description: 'model file', detail: displayPath(uri.fsPath), file: uri.fsPath });
  }
  items.push({ label: '$(folder-opened) Browse…', description: 'a PyTorch checkpoint or NAD model file', browse: true, alwaysShow: true });
  return items;
}

async function pickModels(image: vscode.Uri): Promise<ModelItem[]> {
  const picked = await vscode.window.showQuickPick(modelItems(), {
    title: `Attention maps of ${basename(image.fsPath)}: under which model(s)?`,
    placeHolder: 'Pick one or more models; several are shown side by side',
    canPickMany: true,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!picked || picked.length === 0) return [];
  const chosen = picked.filter((p) => !p.browse);
  if (picked.some((p) => p.browse)) {
    const files = await vscode.window.showOpenDialog({
      canSelectMany: true,
      openLabel: 'Use model',
      filters: { 'Model files': ['pth', 'pt', 'tar', 'safetensors'] },
    });
    for (const f of files ?? []) chosen.push({ label: basename(f.fsPath), file: f.fsPath });
  }
  return chosen;
}

async function pickBackdoor(models: readonly ModelItem[]): Promise<Backdoor | undefined> {
  const known = models.map((m) => backdoorOf(m.run)).find((b) => b !== undefined);
  if (known) return known;
  const items = TRIGGER_NAMES.map((name) => ({
    label: name,
    description: name === PAPER_DEFAULTS.triggerType ? 'the paper’s default' : undefined,
  }));
  const picked = await vscode.window.showQuickPick(items, {
    title: 'Which trigger to stamp for the “triggered” maps?',
    placeHolder: 'The models’ backdoor trigger (not recorded for these model files)',
  });
  return picked
    ? { trigger: { name: picked.label }, targetType: PAPER_DEFAULTS.targetType, targetLabel: PAPER_DEFAULTS.targetLabel }
    : undefined;
}

export async function showImageAttention(
  image: vscode.Uri,
  start: StartImageAttention | undefined,
  open: (maps: vscode.Uri) => Promise<void>,
): Promise<void> {
  if (!start) throw new Error('attention maps of images need the NAD run worker, which is not running');
  const models = await pickModels(image);
  const files = models.map((m) => m.file).filter((f): f is string => f !== undefined);
  if (files.length === 0) return;
  const backdoor = await pickBackdoor(models);
  if (!backdoor) return;
  const folder = vscode.workspace.getWorkspaceFolder(image) ?? vscode.workspace.workspaceFolders?.[0];
  if (!folder || folder.uri.scheme !== 'file') throw new Error('Open a folder first: the maps are stored as a run in its .nad/runs.');
  const config: ImageAttentionConfig = {
    kind: 'imageAttention',
    name: `attention-${basename(image.fsPath).replace(/\.[^.]+$/, '')}`,
    backend: 'auto',
    images: [image.fsPath],
    models: files,
    ...backdoor,
  };
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Attention maps of ${basename(image.fsPath)}`, cancellable: true },
    (_progress, token) => start({ config, cwd: folder.uri.fsPath, runsDir: runsDirFor(folder) }, token),
  );
  await open(vscode.Uri.file(result.mapsFile));
}

/** Image attention through the run manager: a worker computes the maps (never the extension host). */
export function imageAttentionInWorker(manager: RunManager): StartImageAttention {
  return async (request, token) => {
    const task = manager.start({
      title: `Attention maps (${request.config.images.map((f) => basename(f)).join(', ')})`,
      job: { kind: 'job', config: request.config },
      cwd: request.cwd,
      runsDir: request.runsDir,
      // The command shows its own progress, opens the maps, and reports a failure by rejecting.
      openPanel: false,
      notify: false,
    });
    const cancel = token.onCancellationRequested(() => manager.cancel(task));
    try {
      const ended = await task.ended;
      if (ended.state !== 'finished' || !ended.runDir) throw new Error(ended.failure?.message ?? `the attention run ended ${ended.state}`);
      return { mapsFile: join(ended.runDir, 'attention', 'maps.json') };
    } finally {
      cancel.dispose();
    }
  };
}
