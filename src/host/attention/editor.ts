// The attention-maps editor: a read-only custom editor for attention/maps.json, and "NAD: Show Attention
// Maps" that opens it for a run (or, on a PNG/JPEG, computes maps for that image first).
import * as vscode from 'vscode';
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  EPOCH_MAPS_FILE,
  type AttentionHostMessage,
  type AttentionRendered,
  type AttentionSource,
  type EpochMapsData,
} from '../../shared/attention-protocol';
import { parseAttentionMaps, parseEpochMaps } from './maps-file';
import { showImageAttention, type StartImageAttention } from './image-command';
import { runLabel } from '../history/runs-tree';
import { displayPath, pickRuns, runFolderOfFile, runFromArg } from '../runs/pick';
import { requireTrust } from '../trust';
import { readRunSummary } from '../../runs/run-folder';
import { webviewHtml, webviewOptions } from '../webview-html';
import { attentionViewSchema } from '../../shared/message-schemas';
import { onCheckedMessage } from '../webview-messages';

export const ATTENTION_VIEW_TYPE = 'nad.attentionMaps';
export const MAPS_FILE = join('attention', 'maps.json');
const EPOCHS_FILE_NAME = basename(EPOCH_MAPS_FILE);

/** What an open editor last showed: its rendering as the webview reported it, or the problem it shows. */
export type AttentionEditorState = { readonly rendered: AttentionRendered } | { readonly problem: string };

class MapsDocument implements vscode.CustomDocument {
  constructor(readonly uri: vscode.Uri) {}
  dispose(): void {
    // Nothing held: the file is read again whenever the view needs it.
  }
}

export class AttentionEditorProvider implements vscode.CustomReadonlyEditorProvider<MapsDocument> {
  private readonly states = new Map<string, AttentionEditorState>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  /** Fires when an editor reports what it shows (tests wait on it). */
  readonly onDidUpdate = this.changed.event;

  constructor(private readonly extensionUri: vscode.Uri) {}

  /** Last state reported by the editor of `uri`. */
  stateOf(uri: vscode.Uri): AttentionEditorState | undefined {
    return this.states.get(uri.toString());
  }

  openCustomDocument(uri: vscode.Uri): MapsDocument {
    return new MapsDocument(uri);
  }

  resolveCustomEditor(document: MapsDocument, panel: vscode.WebviewPanel): void {
    const { webview } = panel;
    webview.options = webviewOptions(this.extensionUri);
    webview.html = webviewHtml(webview, this.extensionUri, {
      script: 'attention.js',
      styles: ['page.css', 'attention.css'],
      title: 'Attention maps',
    });
    const key = document.uri.toString();
    const post = (m: AttentionHostMessage): void => void webview.postMessage(m);
    const send = async (): Promise<void> => post(await loadMaps(document.uri));
    // The engine rewrites maps.json atomically (rename): follow it, so a re-run shows its new maps.
    const watcher = vscode.workspace.createFileSystemWatcher(
      new vscode.RelativePattern(vscode.Uri.file(dirname(document.uri.fsPath)), basename(document.uri.fsPath)),
    );
    let timer: NodeJS.Timeout | undefined;
    const onFile = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => void send(), 200);
    };
    // A watcher set up just before a write can miss it (VS Code starts watchers asynchronously, and a
    // loaded machine delays them by seconds), so a visible editor also compares the file's stat every second.
    const file = document.uri.scheme === 'file' ? document.uri.fsPath : undefined;
    let seen = file ? statSignature(file) : '';
    const poll = file
      ? setInterval(() => {
          if (!panel.visible) return;
          const now = statSignature(file);
          if (now !== seen) {
            seen = now;
            onFile();
          }
        }, 1000)
      : undefined;
    const subs = [
      watcher,
      watcher.onDidChange(onFile),
      watcher.onDidCreate(onFile),
      watcher.onDidDelete(onFile),
      onCheckedMessage(webview, 'attention maps', attentionViewSchema, (m) => {
        switch (m.type) {
          case 'ready':
            if (file) seen = statSignature(file);
            void send();
            break;
          case 'rendered':
            this.states.set(key, { rendered: m.rendered });
            this.changed.fire(document.uri);
            break;
          case 'problemShown':
            this.states.set(key, { problem: m.problem });
            this.changed.fire(document.uri);
            break;
          default: {
            const _exhaustive: never = m;
            void _exhaustive;
          }
        }
      }),
    ];
    panel.onDidDispose(() => {
      if (timer) clearTimeout(timer);
      if (poll) clearInterval(poll);
      subs.forEach((s) => s.dispose());
      this.states.delete(key);
    });
  }
}

/** What changes when a file is rewritten in place or replaced by a rename; '' when it does not exist. */
function statSignature(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return '';
  }
}

/** Read and validate a maps.json; every failure becomes a message naming the file. */
export async function loadMaps(uri: vscode.Uri): Promise<AttentionHostMessage> {
  const dir = uri.scheme === 'file' ? runFolderOfFile(uri.fsPath) : undefined;
  const run = dir ? readRunSummary(dir) : undefined;
  const source: AttentionSource = {
    file: uri.scheme === 'file' ? displayPath(uri.fsPath) : uri.toString(),
    run: run && !('problem' in run) ? runLabel(run) : undefined,
  };
  let text: string;
  try {
    text = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
  } catch (e) {
    const missing = e instanceof vscode.FileSystemError && e.code === 'FileNotFound';
    return { type: 'problem', source, problem: missing ? 'the file no longer exists' : `cannot read the file (${(e as Error).message})` };
  }
  const parsed = parseAttentionMaps(text);
  if ('problem' in parsed) return { type: 'problem', source, problem: parsed.problem };
  const epochs = await loadEpochMaps(uri, parsed.maps.labels.length);
  return { type: 'show', source, maps: parsed.maps, ...(epochs ? { epochs } : {}) };
}

/** The per-epoch maps beside a maps.json (attention/epochs.jsonl), when the run wrote them. */
async function loadEpochMaps(mapsUri: vscode.Uri, count: number): Promise<EpochMapsData | undefined> {
  const uri = vscode.Uri.joinPath(mapsUri, '..', EPOCHS_FILE_NAME);
  const name = uri.scheme === 'file' ? displayPath(uri.fsPath) : uri.toString();
  let text: string;
  try {
    text = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
  } catch (e) {
    if (e instanceof vscode.FileSystemError && e.code === 'FileNotFound') return undefined;
    return { snapshots: [], problem: `${name}: cannot read the file (${(e as Error).message})` };
  }
  const epochs = parseEpochMaps(text, count, name);
  return epochs.snapshots.length || epochs.problem ? epochs : undefined;
}

export async function openMapsFile(file: vscode.Uri): Promise<void> {
  await vscode.commands.executeCommand('vscode.openWith', file, ATTENTION_VIEW_TYPE);
}

function hasMaps(dir: string): boolean {
  return existsSync(join(dir, MAPS_FILE));
}

/**
 * "NAD: Show Attention Maps": a Runs row, a run folder or maps.json opens the editor; a PNG/JPEG computes
 * its maps with a model first; nothing passed asks for a run that has maps.
 */
async function showAttentionMaps(arg: unknown, start: StartImageAttention | undefined): Promise<void> {
  if (arg instanceof vscode.Uri && /\.(png|jpe?g)$/i.test(arg.path) && !/[\\/]attention[\\/]/.test(arg.fsPath)) {
    // Computing maps loads a model: opening maps a run already wrote does not.
    if (!requireTrust('Computing attention maps of an image')) return;
    await showImageAttention(arg, start, openMapsFile);
    return;
  }
  if (arg instanceof vscode.Uri && arg.path.endsWith('.json')) {
    await openMapsFile(arg);
    return;
  }
  let dir: string | undefined;
  let label = '';
  if (arg !== undefined) {
    const ref = runFromArg(arg);
    if (!ref) throw new Error('Show Attention Maps: this is not a run folder or a file inside one.');
    if ('broken' in ref) throw new Error(`Run folder ${ref.broken.id} cannot be read: ${ref.broken.problem}`);
    dir = ref.run.dir;
    label = runLabel(ref.run);
  } else {
    const [picked] = await pickRuns({
      title: 'Show the attention maps of which run?',
      many: false,
      filter: (r) => hasMaps(r.run.dir),
      emptyMessage: 'No run has attention maps yet: runs write them (attention/maps.json) when they finish.',
    });
    if (!picked) return;
    dir = picked.run.dir;
    label = runLabel(picked.run);
  }
  if (!hasMaps(dir)) {
    void vscode.window.showInformationMessage(`Run "${label}" has no attention maps (${MAPS_FILE}): a run writes them when it finishes.`);
    return;
  }
  await openMapsFile(vscode.Uri.file(join(dir, MAPS_FILE)));
}

/** Registers the editor and its command; `start` runs an image-attention job in the worker (see image-command.ts). */
export function registerAttentionEditor(context: vscode.ExtensionContext, start?: StartImageAttention): AttentionEditorProvider {
  const provider = new AttentionEditorProvider(context.extensionUri);
  context.subscriptions.push(
    vscode.window.registerCustomEditorProvider(ATTENTION_VIEW_TYPE, provider, {
      webviewOptions: { retainContextWhenHidden: false },
      supportsMultipleEditorsPerDocument: true,
    }),
    vscode.commands.registerCommand('nad.showAttentionMaps', (arg: unknown) => showAttentionMaps(arg, start)),
  );
  return provider;
}
