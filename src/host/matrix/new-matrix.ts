// "NAD: New Matrix…": a guided *.nad-matrix.json. The data, the attacks and defenses (checked lists from the
// registries, the paper's Table 1 checked by default), seeds, epochs, the defender's clean share and the target;
// the file is written with each method's parameters at their defaults (the JSON schema completes and checks
// edits), opened, and "Run Matrix" runs it. docs/matrix.md describes the file.
import * as vscode from 'vscode';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative } from 'node:path';
import { MATRIX_FILE_SUFFIX, NO_DEFENSE } from '../../runs/matrix/cells';
import { BADNET_TRAINING, FINETUNE_TRAINING } from '../../runs/config';
import { integerIn, parseNumberList, type PickItem } from '../wizards/multi-step';
import { ask, folderOrWarn, newDraft } from '../wizards/commands';
import { askData, askSubset, askTarget, type Ask } from '../wizards/steps';
import { readAttacks, readDefenses } from '../wizards/registry-info';

/** The NAD paper's Table 1: its attacks and the defenses it compares. */
const PAPER_ATTACKS = ['badnets', 'trojan', 'blend', 'cl', 'sig', 'refool'];
const PAPER_DEFENSES = [NO_DEFENSE, 'finetune', 'fine-pruning', 'mcr', 'nad'];

interface MatrixDraft {
  attacks: string[];
  defenses: string[];
  seeds: number[];
  trainEpochs: number;
  defenseEpochs?: number;
  name: string;
  file?: string;
}

/** The matrix file's JSON for these answers (paths relative to the file, so the folder can move). */
export function matrixFileJson(
  m: MatrixDraft,
  d: { data: string; clean: { cleanRatio?: number; cleanCount?: number }; targetLabel: number },
  file: string,
): Record<string, unknown> {
  const rel = (p: string): string => (p === 'mnist' || !isAbsolute(p) ? p : relative(dirname(file), p) || '.');
  return {
    name: m.name,
    data: rel(d.data),
    test: rel(d.data),
    arch: 'auto',
    seeds: m.seeds,
    target: d.targetLabel,
    ...(d.clean.cleanCount !== undefined ? { cleanCount: d.clean.cleanCount } : { cleanRatio: d.clean.cleanRatio ?? 1 }),
    attacks: m.attacks,
    defenses: m.defenses,
    training: { epochs: m.trainEpochs },
    defenseTraining: m.defenseEpochs !== undefined ? { epochs: m.defenseEpochs } : {},
  };
}

export async function newMatrixWizard(extensionPath: string, dataUri?: vscode.Uri): Promise<vscode.Uri | undefined> {
  const folder = folderOrWarn(dataUri);
  if (!folder) return undefined;
  const attacks = readAttacks(extensionPath);
  const defenses = readDefenses(extensionPath).filter((x) => x.modes.includes('repair'));
  const d = newDraft(folder);
  d.data = dataUri?.fsPath;
  const m: MatrixDraft = {
    attacks: PAPER_ATTACKS.filter((a) => attacks.some((x) => x.name === a)),
    defenses: PAPER_DEFENSES.filter((n) => n === NO_DEFENSE || defenses.some((x) => x.name === n)),
    seeds: [0],
    trainEpochs: BADNET_TRAINING.epochs,
    name: 'table-1',
  };
  const askAttacks: Ask = async (w) => {
    const items = attacks.map((a): PickItem<string> => ({
      label: a.title,
      description: `${a.name}, ${a.labels}-label`,
      detail: a.description,
      value: a.name,
    }));
    m.attacks = await w.pickMany('Attacks: the rows (checked: the NAD paper’s Table 1)', items, (v) => m.attacks.includes(v));
  };
  const rank = (name: string): number => (PAPER_DEFENSES.includes(name) ? PAPER_DEFENSES.indexOf(name) : PAPER_DEFENSES.length);
  const askDefenses: Ask = async (w) => {
    const items: PickItem<string>[] = [
      { label: 'No defense', description: NO_DEFENSE, detail: 'The attacked model as trained: the baseline column.', value: NO_DEFENSE },
      // The paper's columns first, in its order (NAD last), then the others in the registry's order.
      ...[...defenses]
        .sort((a, b) => rank(a.name) - rank(b.name))
        .map((x): PickItem<string> => ({
          label: x.title,
          description: x.name,
          detail: `${x.description} Needs ${x.needs}.`,
          value: x.name,
        })),
    ];
    m.defenses = await w.pickMany('Defenses: the columns (checked: the NAD paper’s Table 1)', items, (v) => m.defenses.includes(v));
  };
  const askSeeds: Ask = async (w) => {
    const v = await w.input({
      prompt: 'Seeds, comma-separated: every cell runs once per seed, and the table shows mean ± std',
      value: m.seeds.join(', '),
      validate: (s) => {
        const seeds = parseNumberList(s);
        if (seeds.length === 0 || !seeds.every((x) => Number.isInteger(x) && x >= 0))
          return 'Seeds: whole numbers >= 0, separated by commas';
        return new Set(seeds).size === seeds.length ? undefined : 'Seeds: each seed once';
      },
    });
    m.seeds = parseNumberList(v);
  };
  const askTrainEpochs: Ask = async (w) => {
    const v = await w.input({
      prompt: `Epochs of training each attacked model (the paper: ${BADNET_TRAINING.epochs})`,
      value: String(m.trainEpochs),
      validate: integerIn(1, 10_000, 'epochs'),
    });
    m.trainEpochs = Number(v);
  };
  const askDefenseEpochs: Ask = async (w) => {
    const v = await w.input({
      prompt: `Epochs of every defense's finetuning; empty: each defense's own (finetuning and NAD: ${FINETUNE_TRAINING.epochs} and 20)`,
      value: m.defenseEpochs === undefined ? '' : String(m.defenseEpochs),
      placeholder: "empty: each defense's own schedule",
      validate: (s) => (s.trim() === '' ? undefined : integerIn(1, 10_000, 'epochs')(s)),
    });
    m.defenseEpochs = v.trim() === '' ? undefined : Number(v);
  };
  const askFile: Ask = async (w, x) => {
    const v = await w.input({
      prompt: `Matrix file, relative to the workspace folder "${x.folder.name}"`,
      value: m.file ? relative(x.folder.uri.fsPath, m.file) : `nad/${m.name}${MATRIX_FILE_SUFFIX}`,
      validate: (s) =>
        !s.trim().endsWith(MATRIX_FILE_SUFFIX)
          ? `The file name must end with ${MATRIX_FILE_SUFFIX}`
          : existsSync(vscode.Uri.joinPath(x.folder.uri, s.trim()).fsPath)
            ? 'That file exists; choose another name'
            : undefined,
    });
    m.file = vscode.Uri.joinPath(x.folder.uri, v.trim()).fsPath;
    m.name = v.trim().split('/').pop()?.slice(0, -MATRIX_FILE_SUFFIX.length) || m.name;
  };
  const ok = await ask('NAD: New Matrix', d, [
    [() => !dataUri, askData('Data: each attack poisons its training split; ACC and ASR on its test split')],
    askAttacks,
    askDefenses,
    askSeeds,
    askTrainEpochs,
    askDefenseEpochs,
    askSubset,
    askTarget,
    askFile,
  ]);
  if (!ok || !d.data || !m.file) return undefined;
  const json = matrixFileJson(m, { data: d.data, clean: d.clean, targetLabel: d.targetLabel }, m.file);
  // The runs layer's parser (which needs the registries, so the engine) checks the file when it runs, in the worker;
  // the extension host never loads the engine. The UI test checks that what the wizard writes parses.
  mkdirSync(dirname(m.file), { recursive: true });
  writeFileSync(m.file, JSON.stringify(json, null, 2) + '\n');
  const uri = vscode.Uri.file(m.file);
  await vscode.window.showTextDocument(uri, { preview: false });
  const cells = m.attacks.length * m.defenses.length * m.seeds.length;
  void vscode.window
    .showInformationMessage(
      `NAD: ${relative(folder.uri.fsPath, m.file)}: ${m.attacks.length} attacks × ${m.defenses.length} defenses × ${m.seeds.length} seed${m.seeds.length > 1 ? 's' : ''} = ${cells} cells. Each method's parameters are at their defaults; edit them in the file.`,
      'Run Matrix',
    )
    .then((a) => a && vscode.commands.executeCommand('nad.runMatrixFile', uri));
  return uri;
}
