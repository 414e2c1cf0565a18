// The VS Code server of the code-server npm package as a process: where it is installed, its CLI for
// installing VSIXs, a free port for it, waiting until it answers, and killing its process group (also
// when this process exits or is stopped). workbench.ts puts a browser in front of it.
import { spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './repo-paths';

/** Folder of the code-server package: NAD_CODE_SERVER_DIR, else installs it (no-op when done) and asks. */
export function codeServerDir(): string {
  const fromEnv = process.env.NAD_CODE_SERVER_DIR;
  if (fromEnv) return fromEnv;
  // Its messages are shown only when it fails: `npm test` has run it already, so it has nothing to do.
  const setup = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'setup-vscode-test.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (setup.status !== 0) throw new Error(`scripts/setup-vscode-test.sh failed (${setup.status ?? setup.signal}):\n${setup.stderr}`);
  const dir = setup.stdout.trim().split('\n').pop() ?? '';
  process.env.NAD_CODE_SERVER_DIR = dir;
  return dir;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Keeps the last `max` lines of a stream of text. */
export class Tail {
  private readonly lines: string[] = [];
  constructor(private readonly max: number) {}
  push(text: string): void {
    for (const line of text.split('\n')) if (line.trim()) this.lines.push(line);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }
  text(): string {
    return this.lines.join('\n');
  }
}

/** Install a VSIX into an extensions folder with the VS Code server's own CLI. */
export function installVsix(vsix: string, extensionsDir: string): string {
  const serverMain = join(codeServerDir(), 'lib', 'vscode', 'out', 'server-main.js');
  const home = mkdtempSync(join(tmpdir(), 'nad-vsix-install-'));
  try {
    return execFileSync(
      process.execPath,
      [serverMain, '--install-extension', vsix, '--extensions-dir', extensionsDir, '--accept-server-license-terms'],
      {
        encoding: 'utf8',
        env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, 'config'), XDG_DATA_HOME: join(home, 'data') },
        timeout: 120_000,
      },
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// Servers run in their own process group (so that closing kills their extension host too), which a
// signal to ours does not reach: kill them when this process exits or is told to stop.
export const liveServers = new Set<ChildProcess>();
let exitHandlersInstalled = false;

export function trackServer(server: ChildProcess): void {
  liveServers.add(server);
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  const killAll = (): void => liveServers.forEach(killGroup);
  process.on('exit', killAll);
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(signal, () => {
      console.error(`[vscode-test] ${signal}: stopping the VS Code server and the browser`);
      killAll();
      process.exit(code);
    });
  }
}

export async function waitForServer(port: number, server: ChildProcess, output: Tail, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(`the VS Code server exited (${server.exitCode ?? server.signalCode}) before answering on port ${port}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/version`, { signal: AbortSignal.timeout(2000) });
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`the VS Code server did not answer on port ${port} within ${timeoutMs / 1000} s\n${output.text()}`);
}
