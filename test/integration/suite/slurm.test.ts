// A run submitted to Slurm from a real VS Code: with nad.executor "slurm", "NAD: Run Config File" writes the
// run folder and its job script and submits it (the worker returns at once); the job, run by Slurm, runs
// the extension's own dist/cli.js on the folder and finishes it. Needs the local Slurm of
// scripts/setup-slurm.sh (npm test starts it); skipped, saying so, without it.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { NadApi } from '../../../src/host/api';
import type { RunTask } from '../../../src/host/runs/manager';
import type { FixtureWorkspace } from '../fixtures/workspace';
import { writeSmallMnist } from '../fixtures/small-mnist';

const EXTENSION_ID = 'nad-vscode.nad-vscode';
const ws = (): string => (JSON.parse(process.env.NAD_TEST_FIXTURE ?? '{}') as FixtureWorkspace).dir;

/**
 * Whether a local Slurm answers; if it does, waits (up to a minute) until its node takes jobs again: after the
 * previous test's job the node is briefly "comp" (completing), and skipping then would hide a real failure.
 */
async function slurmUp(): Promise<boolean> {
  const states = (): string | undefined => {
    const r = spawnSync('sinfo', ['-h', '-o', '%t'], { encoding: 'utf8' });
    return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : undefined;
  };
  if (states() === undefined) return false;
  await until(
    'the Slurm node to take jobs (sinfo state idle, mix or alloc)',
    () => (/^(idle|mix|alloc)/m.test(states() ?? '') ? true : undefined),
    60_000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; sinfo says: ${states() ?? 'nothing'}`);
  });
  return true;
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

suite('Runs on Slurm', () => {
  const config = (): vscode.WorkspaceConfiguration => vscode.workspace.getConfiguration('nad');

  suiteTeardown(async () => {
    await config().update('executor', undefined, vscode.ConfigurationTarget.Workspace);
    await config().update('slurm.time', undefined, vscode.ConfigurationTarget.Workspace);
    await config().update('slurm.extraArgs', undefined, vscode.ConfigurationTarget.Workspace);
  });

  test('with nad.executor "slurm", "NAD: Run Config File" submits the run with sbatch and the job finishes it', async function () {
    this.timeout(240_000);
    if (!(await slurmUp())) {
      console.log('skipped: no local Slurm (scripts/setup-slurm.sh starts one)');
      this.skip();
    }
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext);
    await ext.activate();
    writeSmallMnist(join(ws(), 'data', 'slurm-mnist'), { train: 10, test: 4, repoRoot: ext.extensionPath });
    await config().update('executor', 'slurm', vscode.ConfigurationTarget.Workspace);
    await config().update('slurm.time', '10', vscode.ConfigurationTarget.Workspace);
    mkdirSync(join(ws(), 'configs'), { recursive: true });
    const file = join(ws(), 'configs', 'slurm.nad.json');
    writeFileSync(
      file,
      JSON.stringify({ kind: 'train', name: 'it-slurm', data: '../data/slurm-mnist', training: { epochs: 1, batchSize: 25 } }),
    );
    const runsDir = join(ws(), '.nad', 'runs');
    const before = new Set(existsSync(runsDir) ? readdirSync(runsDir) : []);
    const task = await vscode.commands.executeCommand<RunTask | undefined>('nad.runConfigFile', vscode.Uri.file(file));
    assert.ok(task, 'no task started');
    const ended = await task.ended;
    assert.equal(ended.state, 'finished', ended.failure?.message);
    const id = readdirSync(runsDir).find((d) => !before.has(d) && d.includes('it-slurm'));
    assert.ok(id, 'no run folder for the submitted run');
    const dir = join(runsDir, id);
    const script = readFileSync(join(dir, 'slurm.sbatch'), 'utf8');
    assert.match(script, /#SBATCH --time=10/);
    assert.match(script, new RegExp(`exec \\S+ \\S*${ext.extensionPath.split('/').pop()}\\S*/dist/cli\\.js run-folder `));
    const job = JSON.parse(readFileSync(join(dir, 'slurm.json'), 'utf8')) as { jobId: string };
    assert.match(job.jobId, /^\d+$/);
    const status = await until(
      'the Slurm job to finish the run',
      () => {
        const s = JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8')) as { state: string; error?: string; acc?: number };
        return s.state === 'running' ? undefined : s;
      },
      150_000,
    );
    assert.equal(status.state, 'finished', status.error);
    assert.ok(typeof status.acc === 'number');
  });

  test("the Runs view shows a queued run's Slurm state beside its own, and Cancel runs scancel", async function () {
    this.timeout(150_000);
    if (!(await slurmUp())) this.skip();
    const ext = vscode.extensions.getExtension<NadApi>(EXTENSION_ID);
    assert.ok(ext);
    const api = await ext.activate();
    await config().update('executor', 'slurm', vscode.ConfigurationTarget.Workspace);
    // Held in the queue for an hour: it never takes a CPU.
    await config().update('slurm.extraArgs', ['--begin=now+1hour'], vscode.ConfigurationTarget.Workspace);
    const file = join(ws(), 'configs', 'slurm-held.nad.json');
    writeFileSync(file, JSON.stringify({ kind: 'train', name: 'it-slurm-held', data: '../data/slurm-mnist', training: { epochs: 1 } }));
    const task = await vscode.commands.executeCommand<RunTask | undefined>('nad.runConfigFile', vscode.Uri.file(file));
    assert.ok(task);
    assert.equal((await task.ended).state, 'finished', task.failure?.message);
    const runsDir = join(ws(), '.nad', 'runs');
    const dir = join(runsDir, readdirSync(runsDir).find((d) => d.includes('it-slurm-held')) ?? 'missing');
    const described = await until(
      "the Runs view to show the run's Slurm state",
      () => {
        api.runs.refresh();
        const node = api.runs.getChildren().find((n) => n.type === 'run' && n.run.dir === dir);
        const d = node && String(api.runs.getTreeItem(node).description ?? '');
        return d && /Slurm PENDING/.test(d) ? d : undefined;
      },
      30_000,
    );
    assert.match(described, /running · Slurm PENDING \(BeginTime\)/);
    await vscode.commands.executeCommand('nad.cancelRun', dir);
    const status = JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8')) as { state: string; error?: string };
    assert.equal(status.state, 'cancelled');
    assert.match(status.error ?? '', /ended CANCELLED/);
  });
});
