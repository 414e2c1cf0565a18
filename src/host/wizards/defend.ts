// "NAD: Defend Model…": pick a defense from the registry (dist/defenses.json, written at build time
// from src/engine/defenses/registry.ts, so the extension host never loads the engine), then the
// questions every defense shares, then one question per parameter the defense declares, with its default.
import * as vscode from 'vscode';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ParamSpec } from '../../engine/params';
import type { TrainSettings } from '../../engine/train';
import type { JobConfig } from '../../runs/config';
import type { RunTask } from '../runs/manager';
import { nadSettings } from '../settings';
import { ask, backdoorOf, folderOrWarn, launch, newDraft, stamp, stem, type Entry, type WizardHost } from './commands';
import { integerIn, numberList, parseNumberList, type PickItem } from './multi-step';
import { askData, askEpochs, askFinish, askModel, askSubset, askTarget, askTrigger, pickModelOrNone, type Ask } from './steps';

/** A defense as dist/defenses.json describes it (`nad defenses --json`). */
export interface DefenseInfo {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly needs: string;
  readonly citation: string;
  readonly params: readonly ParamSpec[];
  readonly training: TrainSettings;
}

export function readDefenses(extensionPath: string): DefenseInfo[] {
  return JSON.parse(readFileSync(join(extensionPath, 'dist', 'defenses.json'), 'utf8')) as DefenseInfo[];
}

/** The question for one declared parameter, typed by its kind. */
function askParam(p: ParamSpec): Ask {
  return async (w, d) => {
    const current = d.params[p.key] ?? p.default;
    const prompt = `${p.label}: ${p.description}`;
    switch (p.type) {
      case 'modelFile':
        d.params[p.key] = (await pickModelOrNone(w, d, prompt, 'None', (current as string) || null)) ?? '';
        return;
      case 'boolean':
        d.params[p.key] = await w.pick<boolean>(
          prompt,
          [
            { label: 'Yes', value: true },
            { label: 'No', value: false },
          ],
          (v) => v === current,
        );
        return;
      case 'choice':
        d.params[p.key] = await w.pick<string>(
          prompt,
          p.choices.map((c) => ({ label: c, value: c })),
          (v) => v === current,
        );
        return;
      case 'numbers':
        d.params[p.key] = parseNumberList(
          await w.input({ prompt, value: (current as readonly number[]).join(', '), validate: numberList(p.default.length, p.label) }),
        );
        return;
      case 'number': {
        const lo = p.min ?? -Infinity;
        const hi = p.max ?? Infinity;
        const validate = p.integer
          ? integerIn(Number.isFinite(lo) ? lo : -1e9, Number.isFinite(hi) ? hi : 1e9, p.label)
          : (v: string): string | undefined =>
              v.trim() !== '' && Number(v) >= lo && Number(v) <= hi
                ? undefined
                : `${p.label} must be a number${Number.isFinite(lo) ? ` >= ${lo}` : ''}${Number.isFinite(hi) ? ` and <= ${hi}` : ''}`;
        d.params[p.key] = Number(await w.input({ prompt, value: String(current), validate }));
        return;
      }
      default: {
        const _: never = p;
        return _;
      }
    }
  };
}

export async function defendWizard(host: WizardHost, modelUri?: vscode.Uri, method?: string): Promise<RunTask | undefined> {
  const folder = folderOrWarn(modelUri);
  if (!folder) return undefined;
  const defenses = readDefenses(host.extensionPath);
  const d = newDraft(folder, modelUri?.fsPath);
  d.method = defenses.some((x) => x.name === method) ? method : undefined;
  const chosen = (): DefenseInfo | undefined => defenses.find((x) => x.name === d.method);
  const askDefense: Ask = async (w, x) => {
    const items = defenses.map((def): PickItem<string> => ({
      label: def.title,
      description: def.name,
      detail: `${def.description} Needs ${def.needs}.`,
      value: def.name,
    }));
    x.method = await w.pick('Which defense? Each line says what it needs.', items, (v) => v === x.method);
    const def = chosen();
    if (def) {
      x.epochs = def.training.epochs;
      x.params = Object.fromEntries(def.params.map((p) => [p.key, p.default]));
    }
  };
  // The parameter questions depend on the defense picked; Back re-asks the pick, and these follow it.
  const paramEntries: Entry[] = defenses.flatMap((def) => def.params.map((p): Entry => [(x) => x.method === def.name, askParam(p)]));
  const ok = await ask('NAD: Defend Model', d, [
    [() => method === undefined || !chosen(), askDefense],
    [() => !modelUri, askModel('Backdoored model to repair')],
    askData('Clean data the defender has'),
    askSubset,
    askTrigger,
    askTarget,
    ...paramEntries,
    askEpochs('Finetuning epochs'),
    askFinish((x) => `${x.method ?? 'defend'}-${stem(x.model ?? 'model')}-${stamp()}`),
  ]);
  const def = chosen();
  if (!ok || !def || !d.model || !d.data) return undefined;
  const config: JobConfig = {
    kind: 'defend',
    method: def.name,
    name: `${def.name}-${stem(d.model)}`,
    backend: nadSettings(folder.uri).backend,
    seed: 0,
    model: d.model,
    data: d.data,
    test: d.data,
    ...d.clean,
    backdoor: backdoorOf(d),
    // The rest of the schedule is the defense's own; the run's config.json records all of it.
    training: { epochs: d.epochs, batchSize: nadSettings(folder.uri).defaultBatchSize },
    params: d.params,
  };
  return launch(host, d, config, `${def.title} (${basename(d.model)})`, () => void defendWizard(host));
}
