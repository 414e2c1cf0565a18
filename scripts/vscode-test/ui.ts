// Drives the workbench as a person does: the command palette, tree views, webviews. Selectors are
// the workbench's own DOM (VS Code 1.100); see ../shared/docs/real-vscode.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FrameLocator, Locator, Page } from 'playwright-core';

/** Per-test limit for UI tests: a hung workbench fails the test instead of hanging CI. */
export const TEST_TIMEOUT_MS = 120_000;

/** Opens `workspace` in VS Code's default dark theme (a fresh browser profile would follow the browser's light preference). */
export function useDarkTheme(workspace: string): void {
  mkdirSync(join(workspace, '.vscode'), { recursive: true });
  writeFileSync(join(workspace, '.vscode', 'settings.json'), JSON.stringify({ 'workbench.colorTheme': 'Default Dark Modern' }, null, 2));
}

/** Collects the page's Content-Security-Policy violations (from its console) into the returned list. */
export function watchCsp(page: Page): string[] {
  const violations: string[] = [];
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to (load|apply|execute)/i.test(msg.text())) violations.push(msg.text());
  });
  return violations;
}

const PALETTE_INPUT = '.quick-input-widget .quick-input-box input';
const PALETTE_ROWS = '.quick-input-widget .quick-input-list .monaco-list-row';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Run a command from the palette by its title ("NAD: Show Experiment History"). Right after start the
 * command may not be registered yet, so the palette is reopened until it is listed, up to `timeoutMs`.
 */
export async function runCommand(page: Page, title: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen: string[] = [];
  while (Date.now() < deadline) {
    // Right after start the workbench can take the focus back, which closes the palette: start over then.
    const filled = await openQuickInput(page, 'F1')
      .then((input) => input.fill(`>${title}`, { timeout: 3_000 }))
      .then(
        () => true,
        () => false,
      );
    // Wait for the list to settle on the filter, then pick the row whose label is exactly the title.
    const index = filled ? await waitForRow(page, title, 2_000) : -1;
    if (index >= 0) {
      // The first row has the focus; Enter runs the focused one, as a person does. Not waiting for the
      // palette to close: the command may open a quick pick of its own.
      for (let i = 0; i < index; i++) await page.keyboard.press('ArrowDown');
      await page.keyboard.press('Enter');
      return;
    }
    seen = await rowLabels(page);
    await page.keyboard.press('Escape');
    await sleep(500);
  }
  throw new Error(`command "${title}" not found in the palette within ${timeoutMs / 1000} s; it listed: ${JSON.stringify(seen)}`);
}

/**
 * Whether the palette lists the command `title` (exactly). The palette matches loosely (">NAD: Erase
 * Backdoor" also lists other NAD commands), so an absent command is told from a slow palette by waiting
 * until its answer to the filter is settled and wholly on screen. Call it after `runCommand` has shown
 * that the extension's commands are registered.
 */
export async function paletteLists(page: Page, title: string, timeoutMs = 10_000): Promise<boolean> {
  const input = await openQuickInput(page, 'F1');
  await input.fill(`>${title}`, { timeout: 3_000 });
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let since = Date.now();
  try {
    for (;;) {
      const labels = await rowLabels(page);
      if (labels.includes(title)) return true;
      const key = JSON.stringify(labels);
      if (key !== last) [last, since] = [key, Date.now()];
      // Every matching row is rendered (the list is virtual: aria-setsize is the whole count).
      const total = Number(
        (await page
          .locator(PALETTE_ROWS)
          .first()
          .getAttribute('aria-setsize')
          .catch(() => null)) ?? '0',
      );
      if (labels.length > 0 && labels.length === total && Date.now() - since >= 800) return false;
      if (Date.now() > deadline) throw new Error(`the palette's answer to "${title}" did not settle; it listed: ${key}`);
      await sleep(100);
    }
  } finally {
    await page.keyboard.press('Escape');
  }
}

/** The entries of the context menu of `target` (right-click), closed again with Escape. */
export async function contextMenuLabels(page: Page, target: Locator): Promise<string[]> {
  await target.click({ button: 'right' });
  const items = page.locator('.context-view .action-item .action-label');
  await items.first().waitFor({ state: 'visible', timeout: 10_000 });
  const labels = (await items.allInnerTexts()).map((l) => l.trim()).filter((l) => l !== '');
  await page.keyboard.press('Escape');
  return labels;
}

/** Chooses a colour theme with "Preferences: Color Theme". */
export async function setColorTheme(page: Page, label: string): Promise<void> {
  // Right after start the picker lists only "Browse Additional Color Themes...": reopen until the themes are in.
  const deadline = Date.now() + 45_000;
  for (;;) {
    await runCommand(page, 'Preferences: Color Theme');
    await waitForQuestion(page, /Color Theme/);
    await page.locator(PALETTE_INPUT).fill(label);
    const row = page
      .locator(PALETTE_ROWS)
      .filter({ has: page.locator('.label-name', { hasText: label }) })
      .first();
    if (
      await row.waitFor({ state: 'visible', timeout: 3_000 }).then(
        () => true,
        () => false,
      )
    ) {
      await row.click();
      break;
    }
    await page.keyboard.press('Escape');
    if (Date.now() > deadline) throw new Error(`the color theme "${label}" is not listed`);
    await page.waitForTimeout(1_000);
  }
  await page.waitForTimeout(800);
}

/** Wait until the open quick input asks `question`: in its placeholder, its title or its prompt (input boxes). */
export async function waitForQuestion(page: Page, question: RegExp, timeoutMs = 20_000): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await widget.isVisible()) {
      const placeholder =
        (await widget
          .locator('.quick-input-box input')
          .getAttribute('placeholder', { timeout: 500 })
          .catch(() => null)) ?? '';
      const texts = await widget.locator('.quick-input-title, .quick-input-message').allInnerTexts();
      if ([placeholder, ...texts].some((t) => question.test(t))) return;
      if (Date.now() > deadline)
        throw new Error(`the quick input did not ask ${question}; it showed ${JSON.stringify([placeholder, ...texts])}`);
    } else if (Date.now() > deadline) {
      throw new Error(`no quick input asked ${question}`);
    }
    await sleep(100);
  }
}

/** Click the row of the open quick pick whose label contains `label` (or matches it). */
export async function pickItem(page: Page, label: string | RegExp, timeoutMs = 20_000): Promise<void> {
  const row = page
    .locator(PALETTE_ROWS)
    .filter({ has: page.locator('.label-name', { hasText: label }) })
    .first();
  await row.waitFor({ state: 'visible', timeout: timeoutMs });
  await row.click();
}

/** Answer the input box asking `prompt`: replace its value (or keep it) and press Enter. Returns the value it offered. */
export async function answerInput(page: Page, prompt: RegExp, value?: string): Promise<string> {
  await waitForQuestion(page, prompt);
  const box = page.locator(PALETTE_INPUT);
  const offered = await box.inputValue();
  if (value !== undefined) await box.fill(value);
  await page.keyboard.press('Enter');
  return offered;
}

/** Open a workspace file by name through "Go to File" (Ctrl+P), and wait for its editor tab. */
export async function openFile(page: Page, name: string, timeoutMs = 15_000): Promise<void> {
  const input = await openQuickInput(page, 'Control+P');
  await input.fill(name, { timeout: 5_000 });
  const index = await waitForRow(page, name, timeoutMs);
  if (index < 0) throw new Error(`"${name}" not found by Go to File; it listed: ${JSON.stringify(await rowLabels(page))}`);
  for (let i = 0; i < index; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab.active .label-name', { hasText: name }).waitFor({ timeout: timeoutMs });
}

/** Show the quick input with `key`, giving the focus back to the workbench when keys go nowhere. */
async function openQuickInput(page: Page, key: string): Promise<Locator> {
  const input = page.locator(PALETTE_INPUT);
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press(key);
    if (
      await input.waitFor({ state: 'visible', timeout: 3_000 }).then(
        () => true,
        () => false,
      )
    )
      return input;
    if (attempt === 4) throw new Error(`the quick input did not open on ${key}`);
    // The focus can sit in an iframe (a webview) or nowhere right after start: move it to the page.
    await page.evaluate(() => {
      (document.activeElement as HTMLElement | null)?.blur();
      window.focus();
    });
  }
}

async function rowLabels(page: Page): Promise<string[]> {
  return (await page.locator(`${PALETTE_ROWS} .label-name`).allInnerTexts()).map((l) => l.trim());
}

/** Index of the row labelled exactly `label`, once listed; -1 when it is not within `timeoutMs`. */
async function waitForRow(page: Page, label: string, timeoutMs: number): Promise<number> {
  const row = page.locator(PALETTE_ROWS).filter({ has: page.locator('.label-name', { hasText: label }) });
  if (
    !(await row
      .first()
      .waitFor({ state: 'visible', timeout: timeoutMs })
      .then(
        () => true,
        () => false,
      ))
  )
    return -1;
  return (await rowLabels(page)).indexOf(label);
}

/** The pane of a view in the side bar, by its name ("Runs"); its header is hidden when it is alone in its container. */
export function viewPane(page: Page, viewName: string): Locator {
  return page.locator('.part.sidebar .pane').filter({ has: page.locator(`.pane-header[aria-label="${viewName} Section"]`) });
}

export interface TreeRow {
  readonly label: string;
  readonly description: string;
  /** Codicon of the row's icon (`pass`, `warning`...), when it has one. */
  readonly icon: string | undefined;
  /** What a screen reader reads for the row. */
  readonly ariaLabel: string;
}

/** The rows a tree view shows, read from the page. Waits until at least `minRows` are there. */
export async function treeRows(container: Locator, minRows = 1, timeoutMs = 15_000): Promise<TreeRow[]> {
  const rows = container.locator('.monaco-list-row');
  const deadline = Date.now() + timeoutMs;
  while ((await rows.count()) < minRows) {
    if (Date.now() > deadline)
      throw new Error(`tree shows ${await rows.count()} rows, expected at least ${minRows} within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
  // No helper functions inside: the callback is serialized into the page, without tsx's helpers.
  return rows.evaluateAll((els) =>
    els.map((el) => ({
      label: el.querySelector('.label-name')?.textContent?.trim() ?? '',
      description: el.querySelector('.label-description')?.textContent?.trim() ?? '',
      icon: Array.from(el.querySelector('.custom-view-tree-node-item-icon')?.classList ?? [])
        .find((c) => c.startsWith('codicon-'))
        ?.slice('codicon-'.length),
      ariaLabel: el.getAttribute('aria-label') ?? '',
    })),
  );
}

/** Content of the active webview, two iframes deep (the workbench's outer frame, then the content frame). */
export function activeWebview(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
}

/** Title of the browser tab, as the window title would read ("[Extension Development Host]" in development mode). */
export function windowTitle(page: Page): Promise<string> {
  return page.title();
}
