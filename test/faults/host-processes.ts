// The processes of one test VS Code, found in /proc by the HOME its server was started with (the
// workbench harness gives each server a fresh one, inherited by its extension host and the run workers
// that host forks): the extension host to kill, and run workers that outlived their host. Linux only.
import { readdirSync, readFileSync } from 'node:fs';

export interface TestProcess {
  readonly pid: number;
  readonly cmdline: string;
}

/** Live (not zombie) processes whose environment has HOME=`home`, with their command lines. */
export function processesWithHome(home: string): TestProcess[] {
  const found: TestProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (!environ.includes(`HOME=${home}`)) continue;
      // Field 3 of stat is the state; it follows the command name in parentheses.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      found.push({ pid: Number(entry), cmdline: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ') });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** The extension host(s) of the server started with HOME=`home` (VS Code forks them with --type=extensionHost). */
export function extensionHostPids(home: string): number[] {
  return processesWithHome(home)
    .filter((p) => /--type=extensionHost/.test(p.cmdline))
    .map((p) => p.pid);
}

/** Run workers (dist/worker.js) of that server, whichever extension host forked them. */
export function workerPids(home: string): number[] {
  return processesWithHome(home)
    .filter((p) => /[/\\]dist[/\\]worker\.js\b/.test(p.cmdline))
    .map((p) => p.pid);
}
