// Starts a real VS Code on a machine without a display or a VS Code download: the VS Code server from
// the code-server npm package, and its workbench in headless Chromium driven by playwright-core.
// Used by the runTests shim (extension-host suites), the UI suites and the VSIX test.
// Every failure prints what is needed to debug it: the extension host's log, the browser console,
// the server's output and a screenshot path. See ../shared/docs/real-vscode.md.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { codeServerDir, freePort, killGroup, liveServers, sleep, Tail, trackServer, waitForServer } from './code-server';
import { REPO_ROOT, RESULTS_DIR } from './repo-paths';

export { codeServerDir, freePort, installVsix } from './code-server';
export { REPO_ROOT, RESULTS_DIR };

const CHROMIUM = process.env.NAD_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

const QUIET_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.tips.enabled': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'update.mode': 'none',
  'telemetry.telemetryLevel': 'off',
  'chat.disableAIFeatures': true,
  'git.enabled': false,
};

// Restricted Mode as a person meets it, minus the modal "Do you trust the authors?" at startup (which
// would cover the window): VS Code then opens the folder untrusted, with its Restricted Mode banner.
const RESTRICTED_MODE_SETTINGS = {
  'security.workspace.trust.enabled': true,
  'security.workspace.trust.startupPrompt': 'never',
  'security.workspace.trust.banner': 'always',
  'security.workspace.trust.untrustedFiles': 'open',
  'security.workspace.trust.emptyWindow': false,
};

export interface WorkbenchOptions {
  /** Short name for the temp folder, screenshots and messages. */
  readonly name: string;
  /** Folder opened as the workspace. */
  readonly workspace: string;
  /** Extension under development (absolute path), loaded as in an Extension Development Host. */
  readonly extensionDevelopmentPath?: string;
  /** Compiled extension-host test runner (exports `run`); the workbench then reports through codeAutomationExit. */
  readonly extensionTestsPath?: string;
  /** Extensions folder (installed VSIXs); a fresh empty one by default. */
  readonly extensionsDir?: string;
  /** Answer modal dialogs automatically (VS Code's smoke-test driver); on by default with extensionTestsPath. */
  readonly smokeTestDriver?: boolean;
  /** Extra environment for the server and so the extension host. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * `off` (default): workspace trust disabled, every workspace trusted. `restricted`: trust enabled and
   * the workspace not trusted (Restricted Mode) with no startup prompt; the test trusts it through the UI.
   */
  readonly workspaceTrust?: 'off' | 'restricted';
  /** User keybindings (keybindings.json), e.g. to run a command the palette hides as a person's own shortcut does. */
  readonly keybindings?: ReadonlyArray<{ readonly key: string; readonly command: string; readonly when?: string }>;
}

/** Removes the "%c" styling of the workbench's log lines ("%c INFO color: #33f message"). */
function cleanConsoleText(text: string): string {
  return text.replace(/^%c\s*(\w+)\s+color: #\w+\s?/, '$1 ');
}

export class Workbench {
  private readonly consoleTail = new Tail(200);
  private closed = false;
  private failed = false;
  private exitCode: Promise<number> | undefined;

  private constructor(
    readonly options: WorkbenchOptions,
    readonly root: string,
    readonly port: number,
    private readonly server: ChildProcess,
    readonly browser: Browser,
    readonly page: Page,
    private readonly serverTail: Tail,
  ) {}

  get userDataDir(): string {
    return join(this.root, 'user-data');
  }

  /** Start the server and open the workbench on the workspace. Throws with diagnostics on failure. */
  static async start(options: WorkbenchOptions): Promise<Workbench> {
    const csDir = codeServerDir();
    const serverMain = join(csDir, 'lib', 'vscode', 'out', 'server-main.js');
    if (!existsSync(serverMain)) throw new Error(`VS Code server not found at ${serverMain}: run scripts/setup-vscode-test.sh`);
    const root = mkdtempSync(join(tmpdir(), `nad-vscode-${options.name}-`));
    for (const d of ['home', 'tmp', 'config', 'data', 'cache', 'user-data', 'extensions', 'chromium']) mkdirSync(join(root, d));
    const restricted = options.workspaceTrust === 'restricted';
    // Quiet, deterministic windows: no welcome pages, no gallery look-ups (there is no network).
    for (const scope of ['User', 'Machine']) {
      mkdirSync(join(root, 'user-data', scope), { recursive: true });
      const settings = restricted ? { ...QUIET_SETTINGS, ...RESTRICTED_MODE_SETTINGS } : QUIET_SETTINGS;
      writeFileSync(join(root, 'user-data', scope, 'settings.json'), JSON.stringify(settings, null, 2));
    }
    if (options.keybindings)
      writeFileSync(join(root, 'user-data', 'User', 'keybindings.json'), JSON.stringify(options.keybindings, null, 2));
    const port = await freePort();
    const smoke = options.smokeTestDriver ?? options.extensionTestsPath !== undefined;
    const args = [
      serverMain,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--without-connection-token',
      '--accept-server-license-terms',
      '--disable-telemetry',
      ...(restricted ? [] : ['--disable-workspace-trust']),
      '--user-data-dir',
      join(root, 'user-data'),
      '--extensions-dir',
      options.extensionsDir ?? join(root, 'extensions'),
      ...(smoke ? ['--enable-smoke-test-driver'] : []),
    ];
    // A clean environment: no VS Code of the caller's (a terminal inside VS Code sets VSCODE_*).
    const env: NodeJS.ProcessEnv = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('VSCODE_') && k !== 'ELECTRON_RUN_AS_NODE'),
    );
    Object.assign(env, {
      HOME: join(root, 'home'),
      TMPDIR: join(root, 'tmp'),
      XDG_CONFIG_HOME: join(root, 'config'),
      XDG_DATA_HOME: join(root, 'data'),
      XDG_CACHE_HOME: join(root, 'cache'),
      ...options.env,
    });
    // Own process group, so that closing kills the server with its extension host and watchers.
    const server = spawn(process.execPath, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const serverTail = new Tail(120);
    server.stdout?.on('data', (d: Buffer) => serverTail.push(d.toString()));
    server.stderr?.on('data', (d: Buffer) => serverTail.push(d.toString()));
    const killServer = (): void => {
      killGroup(server);
      liveServers.delete(server);
    };
    trackServer(server);

    let browser: Browser | undefined;
    try {
      await waitForServer(port, server, serverTail, 60_000);
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const wb = new Workbench(options, root, port, server, browser, page, serverTail);
      wb.listen();
      await page.goto(wb.url(), { timeout: 60_000 });
      if (!options.extensionTestsPath) await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
      return wb;
    } catch (e) {
      const message = `could not start the workbench (${options.name}): ${(e as Error).message}\n--- server output:\n${serverTail.text()}\n--- temp folder kept: ${root}`;
      await browser?.close().catch(() => undefined);
      killServer();
      throw new Error(message);
    }
  }

  private remoteUri(path: string): string {
    return `vscode-remote://127.0.0.1:${this.port}${path}`;
  }

  url(): string {
    const payload: [string, string][] = [];
    if (this.options.extensionDevelopmentPath)
      payload.push(['extensionDevelopmentPath', this.remoteUri(this.options.extensionDevelopmentPath)]);
    if (this.options.extensionTestsPath) payload.push(['extensionTestsPath', this.remoteUri(this.options.extensionTestsPath)]);
    const query = [`folder=${encodeURIComponent(this.options.workspace)}`];
    if (payload.length) query.push(`payload=${encodeURIComponent(JSON.stringify(payload))}`);
    return `http://127.0.0.1:${this.port}/?${query.join('&')}`;
  }

  private listen(): void {
    let resolveExit: (code: number) => void = () => undefined;
    this.exitCode = new Promise<number>((r) => (resolveExit = r));
    void this.page.exposeFunction('codeAutomationExit', (code: unknown) => resolveExit(typeof code === 'number' ? code : 1));
    this.page.on('console', (msg) => {
      this.consoleTail.push(`[${msg.type()}] ${cleanConsoleText(msg.text())}`);
    });
    this.page.on('pageerror', (err) => this.consoleTail.push(`[pageerror] ${err.message}`));
    this.page.on('crash', () => this.consoleTail.push('[crash] the page crashed'));
  }

  /** Wait for the extension-host test runner to finish; its exit code, or throws after `timeoutMs`. */
  async waitForTestsExit(timeoutMs: number): Promise<number> {
    if (!this.exitCode) throw new Error('workbench not started');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`extension-host tests did not finish within ${Math.round(timeoutMs / 1000)} s`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exitCode, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Screenshot of the page (or of one element) into test-results/; returns its path relative to the repo. */
  async screenshot(name: string, selector?: string): Promise<string> {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = join(RESULTS_DIR, `${name}.png`);
    if (selector) await this.page.locator(selector).first().screenshot({ path: file, timeout: 10_000 });
    else await this.page.screenshot({ path: file, timeout: 10_000 });
    return relative(REPO_ROOT, file);
  }

  /** Log files the server wrote, extension host logs first. */
  logFiles(): string[] {
    const found: string[] = [];
    const walk = (dir: string): void => {
      if (!existsSync(dir)) return;
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.log')) found.push(p);
      }
    };
    walk(join(this.userDataDir, 'logs'));
    const rank = (p: string): number => (/exthost/i.test(p) ? 0 : /remoteagent/.test(p) ? 1 : 2);
    return found.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  }

  /** Everything needed to debug a failure, as text: screenshot path, extension host log, browser console, server output. */
  async diagnostics(reason: string): Promise<string> {
    const out: string[] = [`=== ${this.options.name}: ${reason}`];
    try {
      out.push(`screenshot: ${await this.screenshot(`${this.options.name}-failure`)}`);
    } catch (e) {
      out.push(`screenshot failed: ${(e as Error).message}`);
    }
    const logs = this.logFiles();
    const isMain = (f: string): boolean => /(^|\/)(remoteexthost|exthost|remoteagent)\.log$/.test(f);
    for (const file of logs.filter(isMain)) {
      const text = readFileSync(file, 'utf8').split('\n');
      if (statSync(file).size === 0) continue;
      out.push(`--- ${relative(this.root, file)} (last 150 lines):`, text.slice(-150).join('\n'));
    }
    out.push(
      `--- other logs under ${this.userDataDir}/logs: ${
        logs
          .filter((f) => !isMain(f))
          .map((f) => relative(this.userDataDir, f))
          .join(', ') || 'none'
      }`,
    );
    out.push('--- browser console (last 200 lines):', this.consoleTail.text() || '(empty)');
    out.push('--- server output (last 40 lines):', this.serverTail.text().split('\n').slice(-40).join('\n') || '(empty)');
    out.push(`--- temp folder kept for inspection: ${this.root}`);
    return out.join('\n');
  }

  /** Run one step of a test; on failure print the diagnostics (and keep the temp folder), then rethrow. */
  async step<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      this.failed = true;
      console.error(await this.diagnostics(`${what}: ${(e as Error).message}`));
      throw e;
    }
  }

  /** Close the browser and kill the server; removes the temp folder unless `keep` or a step failed. */
  async close(keep = this.failed): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.browser.close().catch(() => undefined);
    killGroup(this.server);
    liveServers.delete(this.server);
    await sleep(200);
    if (!keep && !process.env.NAD_KEEP_TEMP) rmSync(this.root, { recursive: true, force: true, maxRetries: 3 });
  }
}
