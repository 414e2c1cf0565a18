// Multi-step quick input with a Back button (the shape of vscode-extension-samples' quickinput-sample):
// each step is a function that asks one question and returns the next step, so Back re-runs the
// previous step with the answers kept.
import * as vscode from 'vscode';

export interface PickItem<T> extends vscode.QuickPickItem {
  readonly value: T;
}

class Back extends Error {}
class Cancelled extends Error {}

export type Step<S> = (w: Wizard, state: S) => Promise<Step<S> | undefined>;

export interface InputOptions {
  readonly prompt: string;
  readonly value: string;
  readonly placeholder?: string;
  /** An error message for an invalid value, else undefined. */
  readonly validate: (value: string) => string | undefined;
}

export class Wizard {
  private step = 0;

  private constructor(
    private readonly title: string,
    private readonly totalSteps: () => number,
  ) {}

  /** Runs the steps; false when the person pressed Escape (or Back on the first step). */
  static async run<S>(title: string, state: S, first: Step<S>, totalSteps: (state: S) => number): Promise<boolean> {
    const w = new Wizard(title, () => totalSteps(state));
    const stack: Step<S>[] = [first];
    while (stack.length > 0) {
      w.step = stack.length;
      try {
        const next = await stack[stack.length - 1](w, state);
        if (!next) return true;
        stack.push(next);
      } catch (e) {
        if (e instanceof Back) stack.pop();
        else if (e instanceof Cancelled) return false;
        else throw e;
      }
    }
    return false;
  }

  pick<T>(placeholder: string, items: ReadonlyArray<PickItem<T> | vscode.QuickPickItem>, active?: (value: T) => boolean): Promise<T> {
    const qp = vscode.window.createQuickPick<PickItem<T> | vscode.QuickPickItem>();
    this.decorate(qp);
    qp.placeholder = placeholder;
    qp.items = items;
    qp.matchOnDescription = true;
    const preselected = active ? items.find((i): i is PickItem<T> => 'value' in i && active(i.value)) : undefined;
    if (preselected) qp.activeItems = [preselected];
    return this.show(qp, (resolve) =>
      qp.onDidAccept(() => {
        const item = qp.selectedItems[0] ?? qp.activeItems[0];
        if (item && 'value' in item) resolve(item.value);
      }),
    );
  }

  /** Several items: the checked ones (at least one) when the person accepts; `checked` marks the initial choice. */
  pickMany<T>(placeholder: string, items: ReadonlyArray<PickItem<T>>, checked: (value: T) => boolean): Promise<T[]> {
    const qp = vscode.window.createQuickPick<PickItem<T>>();
    this.decorate(qp);
    qp.placeholder = placeholder;
    qp.canSelectMany = true;
    qp.items = items;
    qp.matchOnDescription = true;
    qp.selectedItems = items.filter((i) => checked(i.value));
    return this.show(qp as unknown as vscode.QuickPick<vscode.QuickPickItem>, (resolve) =>
      vscode.Disposable.from(
        qp.onDidAccept(() => {
          // In the items' order, whatever order they were checked in.
          if (qp.selectedItems.length) resolve(items.filter((i) => qp.selectedItems.includes(i)).map((i) => i.value));
          else qp.placeholder = `Check at least one. ${placeholder}`;
        }),
      ),
    );
  }

  input(opts: InputOptions): Promise<string> {
    const box = vscode.window.createInputBox();
    this.decorate(box);
    box.prompt = opts.prompt;
    box.value = opts.value;
    box.placeholder = opts.placeholder;
    const check = (): string | undefined => {
      const problem = opts.validate(box.value);
      box.validationMessage = problem;
      return problem;
    };
    return this.show(box, (resolve) =>
      vscode.Disposable.from(
        box.onDidChangeValue(() => check()),
        box.onDidAccept(() => {
          if (check() === undefined) resolve(box.value);
        }),
      ),
    );
  }

  private decorate(q: vscode.QuickInput & { buttons: readonly vscode.QuickInputButton[] }): void {
    q.title = this.title;
    q.step = this.step;
    q.totalSteps = Math.max(this.step, this.totalSteps());
    q.ignoreFocusOut = true;
    q.buttons = this.step > 1 ? [vscode.QuickInputButtons.Back] : [];
  }

  private show<T>(
    q: vscode.QuickPick<vscode.QuickPickItem> | vscode.InputBox,
    accept: (resolve: (v: T) => void) => vscode.Disposable,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const done = (f: () => void): void => {
        if (settled) return;
        settled = true;
        f();
        subs.dispose();
        q.dispose();
      };
      const subs = vscode.Disposable.from(
        accept((v) => done(() => resolve(v))),
        q.onDidTriggerButton((b) => {
          if (b === vscode.QuickInputButtons.Back) done(() => reject(new Back()));
        }),
        q.onDidHide(() => done(() => reject(new Cancelled()))),
      );
      q.show();
    });
  }
}

/** Validation helpers for number inputs. */
export function integerIn(min: number, max: number, what: string): (v: string) => string | undefined {
  return (v) => {
    const n = Number(v.trim());
    return v.trim() !== '' && Number.isInteger(n) && n >= min && n <= max
      ? undefined
      : `${what} must be a whole number from ${min} to ${max}`;
  };
}

export function numberList(count: number, what: string): (v: string) => string | undefined {
  return (v) => {
    const parts = v
      .split(/[,\s]+/)
      .filter(Boolean)
      .map(Number);
    return parts.length === count && parts.every((x) => Number.isFinite(x) && x >= 0)
      ? undefined
      : `${what}: give ${count} numbers >= 0, separated by commas`;
  };
}

export function parseNumberList(v: string): number[] {
  return v
    .split(/[,\s]+/)
    .filter(Boolean)
    .map(Number);
}
