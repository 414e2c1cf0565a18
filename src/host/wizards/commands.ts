// The guided commands: Erase Backdoor, Train Backdoored Model, Finetune Teacher, Evaluate Model. Each
// is a list of questions (wizard-steps.ts) that fills a draft, then a job config with what was asked;
// the defaults of the data's kind (src/runs/data-defaults.ts) fill in the rest when the run starts. It
// is run (and optionally saved as a *.nad.json file first).
import * as vscode from 'vscode';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import {
  BADNET_TRAINING,
  DEFAULT_BACKDOOR,
  FINETUNE_TRAINING,
  NAD_TRAINING,
  type BackdoorConfig,
  type JobConfig,
  type TrainJobConfig,
} from '../../runs/config';
import type { TrainSettings } from '../../engine/train';
import type { TrainingChanges } from '../../runs/data-defaults';
import type { BackendPreference } from '../../engine/backend';
import { configFileText } from '../../runs/config-file';
import type { RunManager, RunTask } from '../runs/manager';
import { folderFor, nadSettings, runsDirFor } from '../settings';
import { Wizard, type PickItem, type Step } from './multi-step';
import type { Prefill } from './prefill';
import { askParam, readAttacks, type AttackInfo } from './registry-info';
import {
  askBetas,
  askData,
  askEpochs,
  askFinish,
  askInjectPortion,
  askModel,
  askSubset,
  askTarget,
  askTeacher,
  askTeacherEpochs,
  askTrigger,
  type Ask,
  type JobDraft,
} from './steps';

export type Entry = Ask | readonly [(d: JobDraft) => boolean, Ask];

/** Ask the questions in order (skipping those whose condition fails); false when dismissed. */
export function ask(title: string, draft: JobDraft, entries: readonly Entry[]): Promise<boolean> {
  const norm = entries.map((e) => (typeof e === 'function' ? ([() => true, e] as const) : e));
  const nextFrom = (i: number, d: JobDraft): number => {
    let j = i;
    while (j < norm.length && !norm[j][0](d)) j++;
    return j;
  };
  const stepAt =
    (i: number): Step<JobDraft> =>
    async (w, d) => {
      await norm[i][1](w, d);
      const j = nextFrom(i + 1, d);
      return j < norm.length ? stepAt(j) : undefined;
    };
  const first = nextFrom(0, draft);
  if (first >= norm.length) return Promise.resolve(true);
  return Wizard.run(title, draft, stepAt(first), (d) => norm.filter(([when]) => when(d)).length);
}

export function newDraft(folder: vscode.WorkspaceFolder, model?: string): JobDraft {
  const s = nadSettings(folder.uri);
  return {
    folder,
    model,
    clean: { cleanRatio: 0.05 },
    trigger: DEFAULT_BACKDOOR.trigger.name,
    targetLabel: DEFAULT_BACKDOOR.targetLabel,
    injectPortion: DEFAULT_BACKDOOR.injectPortion,
    epochs: s.defaultEpochs,
    teacherEpochs: FINETUNE_TRAINING.epochs,
    betas: [...NAD_TRAINING.betas],
    params: {},
  };
}

/** What the wizards set of a schedule: the epochs asked, the batch size setting and `extra`; the data's kind gives the rest. */
export function training(d: JobDraft, epochs: number, extra: Partial<TrainSettings> = {}): TrainingChanges {
  return { epochs, batchSize: nadSettings(d.folder.uri).defaultBatchSize, ...extra };
}

/** What every wizard's job shares: the backend setting, seed 0, the test split of the chosen data, the backdoor asked. */
export function jobBase(d: JobDraft): { backend: BackendPreference; seed: number; test: string; backdoor: BackdoorConfig } {
  return { backend: nadSettings(d.folder.uri).backend, seed: 0, test: d.data as string, backdoor: backdoorOf(d) };
}

export function backdoorOf(d: JobDraft): BackdoorConfig {
  return { ...DEFAULT_BACKDOOR, trigger: { name: d.trigger }, targetLabel: d.targetLabel, injectPortion: d.injectPortion };
}

export const stamp = (): string => new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 13);
export const stem = (p: string): string => basename(p).replace(/\.(pth\.tar|pth|pt|safetensors)$/i, '');

export interface WizardHost {
  readonly manager: RunManager;
  readonly log: vscode.LogOutputChannel;
  /** The extension's folder: dist/defenses.json lists the defenses. */
  readonly extensionPath: string;
}

/** Save the config if asked, then queue the run. */
export function launch(host: WizardHost, d: JobDraft, config: JobConfig, title: string, retry: () => void): RunTask {
  if (d.saveTo) {
    mkdirSync(dirname(d.saveTo), { recursive: true });
    writeFileSync(d.saveTo, configFileText(config, d.saveTo));
    host.log.info(`saved ${d.saveTo}`);
  }
  return host.manager.start({
    title,
    job: { kind: 'job', config },
    cwd: d.folder.uri.fsPath,
    runsDir: runsDirFor(d.folder),
    retry,
    configFile: d.saveTo,
  });
}

export function folderOrWarn(uri?: vscode.Uri): vscode.WorkspaceFolder | undefined {
  const folder = folderFor(uri);
  if (!folder)
    void vscode.window
      .showErrorMessage('NAD: open a folder first; runs are stored in the workspace folder (.nad/runs).', 'Open Folder')
      .then((a) => a && vscode.commands.executeCommand('workbench.action.files.openFolder'));
  return folder;
}

/** The wizard's title; "Run Again With Changes" says which run it starts from. */
export const titleOf = (title: string, prefill: Prefill | undefined): string =>
  prefill ? `${title}, again with changes (${prefill.name || 'run'})` : title;

export async function eraseBackdoorWizard(host: WizardHost, modelUri?: vscode.Uri, prefill?: Prefill): Promise<RunTask | undefined> {
  const folder = folderOrWarn(modelUri ?? prefill?.runUri);
  if (!folder) return undefined;
  const d = newDraft(folder, modelUri?.fsPath);
  prefill?.apply(d);
  const fromContext = modelUri !== undefined;
  const ok = await ask(titleOf('NAD: Erase Backdoor', prefill), d, [
    [() => !fromContext, askModel('Backdoored model to repair')],
    askTeacher,
    askData('Clean data'),
    askSubset,
    askTrigger,
    askTarget,
    [(x) => x.teacher === null, askTeacherEpochs],
    askEpochs(`Epochs of Neural Attention Distillation (the paper: ${NAD_TRAINING.epochs})`),
    askBetas,
    askFinish((x) => `erase-${stem(x.model ?? 'model')}-${stamp()}`),
  ]);
  if (!ok || !d.model || !d.data) return undefined;
  const config: JobConfig = {
    kind: 'erase',
    name: `erase-${stem(d.model)}`,
    ...jobBase(d),
    student: d.model,
    ...(d.teacher ? { teacher: d.teacher } : {}),
    data: d.data,
    ...d.clean,
    teacherTraining: training(d, d.teacherEpochs, { betas: [0, 0, 0] }),
    training: training(d, d.epochs, { betas: d.betas }),
  };
  // Run Again With Changes: the run's own config with the changed answers over it.
  const job = prefill ? prefill.finish(d) : config;
  if (!job) return undefined;
  return launch(host, d, job, `Erase backdoor (${basename(d.model)})`, () => void eraseBackdoorWizard(host));
}

export interface TrainDraft {
  readonly config: TrainJobConfig;
  readonly draft: JobDraft;
  readonly title: string;
}

/**
 * The Train wizard's questions: data, attack and its parameters, target, share poisoned; then, to train,
 * epochs and whether to save a config. `preview` stops after the attack's questions (nothing is trained).
 */
export async function askTrainConfig(
  extensionPath: string,
  folder: vscode.WorkspaceFolder,
  dataUri: vscode.Uri | undefined,
  preview: boolean,
  prefill?: Prefill,
): Promise<TrainDraft | undefined> {
  const attacks = readAttacks(extensionPath);
  const d = newDraft(folder);
  d.data = dataUri?.fsPath;
  d.attack = attacks[0]?.name;
  prefill?.apply(d);
  const chosen = (): AttackInfo | undefined => attacks.find((a) => a.name === d.attack);
  const askAttack: Ask = async (w, x) => {
    const items = attacks.map((a): PickItem<string> => ({
      label: a.title,
      description: `${a.name}, ${a.labels}-label`,
      detail: a.description,
      value: a.name,
    }));
    const before = x.attack;
    x.attack = await w.pick(preview ? 'Attack to preview' : 'Attack: how the training set is poisoned', items, (v) => v === x.attack);
    const a = chosen();
    // Another attack starts from its own defaults; the same one keeps the answers given (or prefilled).
    if (a && (a.name !== before || Object.keys(x.params).length === 0)) {
      x.params = Object.fromEntries(a.params.map((p) => [p.key, p.default]));
      x.injectPortion = a.defaults.injectPortion;
    }
  };
  // Each attack's own questions follow its pick (Back re-asks the pick).
  const paramEntries: Entry[] = attacks.flatMap((a) => a.params.map((p): Entry => [(x) => x.attack === a.name, askParam(p)]));
  const ok = await ask(preview ? 'NAD: Preview Attack' : titleOf('NAD: Train Backdoored Model', prefill), d, [
    [() => !dataUri, askData(preview ? 'Data to poison (a sample of it is shown)' : 'Training data (a share of it is poisoned)')],
    askAttack,
    ...paramEntries,
    askTarget,
    askInjectPortion,
    ...(preview ? [] : [askEpochs(`Training epochs (the paper: ${BADNET_TRAINING.epochs})`), askFinish(() => `train-${stamp()}`)]),
  ]);
  const attack = chosen();
  if (!ok || !d.data || !attack) return undefined;
  const title = `${attack.title}, ${d.data === 'mnist' ? 'MNIST' : basename(d.data)}`;
  if (prefill) {
    const again = prefill.finish(d);
    return again?.kind === 'train' ? { config: again, draft: d, title } : undefined;
  }
  const config: TrainJobConfig = {
    kind: 'train',
    name: `backdoored-${attack.name}`,
    ...jobBase(d),
    data: d.data,
    model: 'auto',
    attack: { name: attack.name, params: d.params },
    // The attack's trigger replaces this one when the run starts (its config.json records it).
    backdoor: { ...backdoorOf(d), targetType: attack.defaults.targetType },
    training: training(d, d.epochs),
  };
  return { config, draft: d, title };
}

export async function trainWizard(host: WizardHost, dataUri?: vscode.Uri, prefill?: Prefill): Promise<RunTask | undefined> {
  const folder = folderOrWarn(dataUri ?? prefill?.runUri);
  if (!folder) return undefined;
  const t = await askTrainConfig(host.extensionPath, folder, dataUri, false, prefill);
  if (!t) return undefined;
  return launch(host, t.draft, t.config, `Train backdoored model (${t.title})`, () => void trainWizard(host));
}

export async function finetuneWizard(host: WizardHost, modelUri?: vscode.Uri, prefill?: Prefill): Promise<RunTask | undefined> {
  const folder = folderOrWarn(modelUri ?? prefill?.runUri);
  if (!folder) return undefined;
  const d = newDraft(folder, modelUri?.fsPath);
  d.epochs = FINETUNE_TRAINING.epochs;
  prefill?.apply(d);
  const ok = await ask(titleOf('NAD: Finetune Teacher', prefill), d, [
    [() => !modelUri, askModel('Model to finetune into a teacher (usually the backdoored one)')],
    askData('Clean data'),
    askSubset,
    askTrigger,
    askTarget,
    askEpochs(`Finetuning epochs (the paper: ${FINETUNE_TRAINING.epochs})`),
    askFinish((x) => `finetune-${stem(x.model ?? 'model')}-${stamp()}`),
  ]);
  if (!ok || !d.model || !d.data) return undefined;
  const config: JobConfig = {
    kind: 'finetune',
    name: `teacher-${stem(d.model)}`,
    ...jobBase(d),
    model: d.model,
    data: d.data,
    ...d.clean,
    training: training(d, d.epochs),
  };
  // Run Again With Changes: the run's own config with the changed answers over it.
  const job = prefill ? prefill.finish(d) : config;
  if (!job) return undefined;
  return launch(host, d, job, `Finetune teacher (${basename(d.model)})`, () => void finetuneWizard(host));
}

export async function evaluateWizard(host: WizardHost, modelUri?: vscode.Uri, prefill?: Prefill): Promise<RunTask | undefined> {
  const folder = folderOrWarn(modelUri ?? prefill?.runUri);
  if (!folder) return undefined;
  const d = newDraft(folder, modelUri?.fsPath);
  prefill?.apply(d);
  const ok = await ask(titleOf('NAD: Evaluate Model', prefill), d, [
    [() => !modelUri, askModel('Model to evaluate')],
    askData('Test data (its test split)'),
    askTrigger,
    askTarget,
    askFinish((x) => `eval-${stem(x.model ?? 'model')}-${stamp()}`),
  ]);
  if (!ok || !d.model || !d.data) return undefined;
  const config: JobConfig = {
    kind: 'eval',
    name: `eval-${stem(d.model)}`,
    ...jobBase(d),
    model: d.model,
  };
  // Run Again With Changes: the run's own config with the changed answers over it.
  const job = prefill ? prefill.finish(d) : config;
  if (!job) return undefined;
  return launch(host, d, job, `Evaluate ${basename(d.model)}`, () => void evaluateWizard(host));
}
