// The questions the run wizards ask, one function each, over one draft of the job. Files are offered
// from the workspace (checkpoints, datasets, models written by earlier runs), with Browse as a fallback.
import * as vscode from 'vscode';
import { basename, dirname, join, relative } from 'node:path';
import { DEFAULT_BACKDOOR } from '../../runs/config';
import { TRIGGER_NAMES } from '../../engine/triggers/spec';
import type { ParamValue } from '../../engine/params';
import { integerIn, numberList, parseNumberList, type PickItem, type Wizard } from './multi-step';

export interface JobDraft {
  readonly folder: vscode.WorkspaceFolder;
  /** The model to erase, finetune or evaluate. */
  model?: string;
  /** Teacher file, or null = finetune one from the clean data first. */
  teacher?: string | null;
  /** 'mnist' or a dataset path. */
  data?: string;
  clean: { cleanRatio?: number; cleanCount?: number };
  trigger: string;
  targetLabel: number;
  injectPortion: number;
  epochs: number;
  teacherEpochs: number;
  betas: number[];
  /** A defense's registry name (NAD: Defend Model), an attack's (Train Backdoored Model), and its parameters. */
  method?: string;
  attack?: string;
  params: Record<string, ParamValue>;
  /** Run only, or save the config first (to this file). */
  saveTo?: string;
}

export type Ask = (w: Wizard, d: JobDraft) => Promise<void>;

const BROWSE = Symbol('browse');
const CHECKPOINT_GLOB = '**/*.{pth,pt,safetensors,tar}';
const DATA_GLOBS = ['**/*.bin', '**/*-ubyte', '**/*-ubyte.gz', '**/*.idx3-ubyte'];
/** Marker files of the folder layouts: a GTSRB class annotation (Final_Training/Images/00000/GT-00000.csv), Tiny-ImageNet's wnids.txt. */
const GTSRB_GLOB = '**/Final_Training/Images/00000/GT-00000.csv';
const TINY_IMAGENET_GLOB = '**/wnids.txt';
const EXCLUDE = '**/{node_modules,.git}/**';

function describePath(folder: vscode.WorkspaceFolder, file: string): string {
  const rel = relative(folder.uri.fsPath, dirname(file));
  return rel && !rel.startsWith('..') ? rel : dirname(file);
}

async function checkpointItems(folder: vscode.WorkspaceFolder): Promise<PickItem<string>[]> {
  const found = await vscode.workspace.findFiles(new vscode.RelativePattern(folder, CHECKPOINT_GLOB), EXCLUDE, 500);
  return found
    .map((u) => u.fsPath)
    .filter((p) => !p.endsWith('.tar') || p.endsWith('.pth.tar'))
    .sort()
    .map((p) => ({ label: `$(file-binary) ${basename(p)}`, description: describePath(folder, p), value: p }));
}

async function datasetItems(folder: vscode.WorkspaceFolder): Promise<PickItem<string>[]> {
  const found = new Set<string>();
  const files = new Set<string>();
  for (const glob of DATA_GLOBS) {
    for (const u of await vscode.workspace.findFiles(new vscode.RelativePattern(folder, glob), EXCLUDE, 200)) files.add(u.fsPath);
  }
  for (const file of files) {
    // A CIFAR-10 batches folder, a train.bin + test.bin pair or an MNIST-style IDX folder is one dataset
    // with both splits, not several files: runs then train on the train split and measure on the test split.
    const name = basename(file);
    const dir = dirname(file);
    const pair = /^(train|test)\.bin$/.test(name) && files.has(join(dir, 'train.bin')) && files.has(join(dir, 'test.bin'));
    if (pair || /^(data_batch_\d|test_batch)\.bin$/.test(name) || /^(train|t10k|test)-(images|labels)-idx\d-ubyte(\.gz)?$/i.test(name))
      found.add(dir);
    else if (!/labels/i.test(name)) found.add(file);
  }
  // GTSRB: the folder holding Final_Training (the loader finds Final_Test and its CSV beside it); Tiny-ImageNet: the folder of wnids.txt.
  for (const u of await vscode.workspace.findFiles(new vscode.RelativePattern(folder, GTSRB_GLOB), EXCLUDE, 20))
    found.add(dirname(dirname(dirname(u.fsPath))));
  for (const u of await vscode.workspace.findFiles(new vscode.RelativePattern(folder, TINY_IMAGENET_GLOB), EXCLUDE, 20))
    found.add(dirname(u.fsPath));
  return [...found].sort().map((p) => ({ label: `$(database) ${basename(p)}`, description: describePath(folder, p), value: p }));
}

async function browse(
  folder: vscode.WorkspaceFolder,
  what: string,
  folders: boolean,
  filters?: Record<string, string[]>,
): Promise<string | undefined> {
  const picked = await vscode.window.showOpenDialog({
    title: what,
    defaultUri: folder.uri,
    canSelectFiles: true,
    canSelectFolders: folders,
    canSelectMany: false,
    filters,
  });
  return picked?.[0]?.fsPath;
}

/** A pick whose last item is "Browse…"; asks again when the dialog is dismissed. */
async function pickPath(
  w: Wizard,
  d: JobDraft,
  placeholder: string,
  items: ReadonlyArray<PickItem<string | null>>,
  current: string | null | undefined,
  browseTitle: string,
  folders: boolean,
  filters?: Record<string, string[]>,
  browseHint = folders ? 'a file or folder' : 'a file',
): Promise<string | null> {
  // A path chosen before (Browse, or a run's config) that the workspace search does not offer stays the current choice.
  const earlier: PickItem<string>[] =
    typeof current === 'string' && current !== 'mnist' && !items.some((i) => i.value === current)
      ? [{ label: `$(history) ${basename(current)}`, description: dirname(current), value: current }]
      : [];
  for (;;) {
    const choice = await w.pick<string | null | typeof BROWSE>(
      placeholder,
      [...earlier, ...items, { label: '$(folder-opened) Browse…', description: browseHint, value: BROWSE }],
      (v) => v === current,
    );
    if (choice !== BROWSE) return choice;
    const path = await browse(d.folder, browseTitle, folders, filters);
    if (path) return path;
  }
}

const MODEL_FILTERS = { 'Model files': ['pth', 'pt', 'tar', 'safetensors'] };

/** A model file, or none (null) with `noneLabel` saying what happens then. */
export async function pickModelOrNone(
  w: Wizard,
  d: JobDraft,
  placeholder: string,
  noneLabel: string,
  current: string | null | undefined,
): Promise<string | null> {
  const items: PickItem<string | null>[] = [
    { label: `$(sparkle) ${noneLabel}`, value: null },
    ...(await checkpointItems(d.folder)).filter((i) => i.value !== d.model),
  ];
  return pickPath(w, d, placeholder, items, current === undefined ? null : current, placeholder, false, MODEL_FILTERS);
}

export function askModel(purpose: string): Ask {
  return async (w, d) => {
    const items = await checkpointItems(d.folder);
    const placeholder = items.length ? purpose : `${purpose}: no model files in this workspace; browse for one`;
    d.model =
      (await pickPath(w, d, placeholder, items, d.model, purpose, false, MODEL_FILTERS, '.pth, .pth.tar, .pt or .safetensors')) ??
      undefined;
  };
}

export const askTeacher: Ask = async (w, d) => {
  const items: PickItem<string | null>[] = [
    { label: '$(sparkle) Finetune one now from the clean data', description: 'the paper: 10 epochs on the 5% clean subset', value: null },
    ...(await checkpointItems(d.folder)).filter((i) => i.value !== d.model),
  ];
  d.teacher = await pickPath(
    w,
    d,
    'Teacher model: finetuned on clean data; its attention guides the erasure',
    items,
    d.teacher === undefined ? null : d.teacher,
    'Teacher model',
    false,
    MODEL_FILTERS,
  );
};

export function askData(purpose: string): Ask {
  return async (w, d) => {
    const items: PickItem<string>[] = [
      { label: '$(symbol-number) Built-in MNIST demo digits', description: '10,000 handwritten digits, no download', value: 'mnist' },
      ...(await datasetItems(d.folder)),
    ];
    d.data =
      (await pickPath(w, d, purpose, items, d.data ?? 'mnist', purpose, true, undefined, 'CIFAR-10 .bin, IDX files or class folders')) ??
      'mnist';
  };
}

export const askSubset: Ask = async (w, d) => {
  const ratio = (r: number): { cleanRatio: number } => ({ cleanRatio: r });
  type Choice = { cleanRatio?: number; cleanCount?: number } | 'count';
  const listed = [0.05, 0.01, 0.1, 0.2];
  const given = d.clean.cleanRatio;
  const items: PickItem<Choice>[] = [
    // A share not in the list (a run's config, a file) stays on offer, first.
    ...(given !== undefined && !listed.includes(given)
      ? [{ label: `${+(given * 100).toFixed(4)}% of the images`, value: ratio(given) }]
      : []),
    { label: '5% of the images', description: 'the paper', value: ratio(0.05) },
    { label: '1% of the images', value: ratio(0.01) },
    { label: '10% of the images', value: ratio(0.1) },
    { label: '20% of the images', value: ratio(0.2) },
    { label: 'All images', value: {} },
    { label: 'A number of images…', value: 'count' },
  ];
  const same = (v: Choice): boolean =>
    v === 'count' ? d.clean.cleanCount !== undefined : v.cleanRatio === d.clean.cleanRatio && d.clean.cleanCount === undefined;
  const choice = await w.pick<Choice>('Clean subset: how much clean data the defender has', items, same);
  if (choice !== 'count') {
    d.clean = choice;
    return;
  }
  const n = await w.input({
    prompt: 'Number of clean images to use',
    value: String(d.clean.cleanCount ?? 500),
    validate: integerIn(1, 10_000_000, 'The number of images'),
  });
  d.clean = { cleanCount: Number(n) };
};

const TRIGGER_HELP: Partial<Record<(typeof TRIGGER_NAMES)[number], string>> = {
  gridTrigger: 'BadNets 3x3 grid in the corner (the paper’s default)',
  squareTrigger: 'a white square near the corner',
  fourCornerTrigger: 'patterns in all four corners',
  randomPixelTrigger: 'blended random pixels',
  signalTrigger: 'blended signal pattern',
  trojanTrigger: 'Trojan attack watermark',
  blend: 'blended noise pattern',
  sig: 'sinusoidal signal (SIG)',
  sigAdditive: 'additive sinusoidal signal',
  warp: 'smooth random warp of the whole image (WaNet)',
};

export const askTrigger: Ask = async (w, d) => {
  const items = TRIGGER_NAMES.map((n): PickItem<string> => ({ label: n, description: TRIGGER_HELP[n], value: n }));
  d.trigger = await w.pick('Trigger of the backdoor (used to measure the attack success rate, ASR)', items, (v) => v === d.trigger);
};

export const askTarget: Ask = async (w, d) => {
  const v = await w.input({
    prompt: `Target label of the backdoor (all-to-one; the paper: ${DEFAULT_BACKDOOR.targetLabel})`,
    value: String(d.targetLabel),
    validate: integerIn(0, 999, 'The target label'),
  });
  d.targetLabel = Number(v);
};

export const askInjectPortion: Ask = async (w, d) => {
  const v = await w.input({
    prompt: 'Share of training images poisoned, in % (the paper: 10)',
    value: String(+(d.injectPortion * 100).toFixed(4)),
    validate: (s) => (Number(s) >= 0 && Number(s) <= 100 && s.trim() !== '' ? undefined : 'Give a percentage from 0 to 100'),
  });
  d.injectPortion = Number(v) / 100;
};

export function askEpochs(prompt: string): Ask {
  return async (w, d) => {
    d.epochs = Number(await w.input({ prompt, value: String(d.epochs), validate: integerIn(1, 10_000, 'Epochs') }));
  };
}

export const askTeacherEpochs: Ask = async (w, d) => {
  d.teacherEpochs = Number(
    await w.input({
      prompt: 'Epochs of the teacher’s finetuning (the paper: 10)',
      value: String(d.teacherEpochs),
      validate: integerIn(1, 10_000, 'Epochs'),
    }),
  );
};

export const askBetas: Ask = async (w, d) => {
  const v = await w.input({
    prompt: 'Attention distillation weights β for the three residual groups (the paper: 500, 1000, 1000)',
    value: d.betas.join(', '),
    validate: numberList(3, 'Betas'),
  });
  d.betas = parseNumberList(v);
};

/** Last step: run now, or save a config file first (and run it). */
export function askFinish(defaultName: (d: JobDraft) => string): Ask {
  return async (w, d) => {
    const choice = await w.pick<'run' | 'save'>('Ready', [
      { label: '$(play) Run', description: 'start the run now', value: 'run' },
      {
        label: '$(save) Save as config file and run',
        description: 'a *.nad.json file you can run again with "NAD: Run Config File"',
        value: 'save',
      },
    ]);
    if (choice === 'run') {
      d.saveTo = undefined;
      return;
    }
    const rel = await w.input({
      prompt: `Config file, relative to the workspace folder "${d.folder.name}"`,
      value: d.saveTo ? relative(d.folder.uri.fsPath, d.saveTo) : `nad/${defaultName(d)}.nad.json`,
      validate: (s) => (/\.nad\.json$/i.test(s.trim()) ? undefined : 'The file name must end with .nad.json'),
    });
    d.saveTo = vscode.Uri.joinPath(d.folder.uri, rel.trim()).fsPath;
  };
}
