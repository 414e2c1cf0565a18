// "NAD: Check Runs" in a real VS Code: a run whose process is gone (status.json still says running) and a
// temp file left by a crashed write are found; the fixes mark the run interrupted and remove the file, and
// leave a finished run's folder as it was.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import * as vscode from 'vscode';
import type { CheckRunsResult } from '../../../src/host/runs/check-runs';
import { RunStore } from '../../../src/runs/run-store';
import type { FixtureWorkspace } from '../fixtures/workspace';

const EXTENSION_ID = 'nad-vscode.nad-vscode';
const ws = (): string => (JSON.parse(process.env.NAD_TEST_FIXTURE ?? '{}') as FixtureWorkspace).dir;

suite('Check Runs', () => {
  test('"NAD: Check Runs" finds a dead run and a stale temp file, and its fixes repair exactly those', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext);
    await ext.activate();
    const store = new RunStore(ws());
    const finished = store.create('eval', { name: 'doctor-ok' }, 'doctor-ok');
    finished.finish({ acc: 90, asr: 10 });
    const finishedStatus = readFileSync(finished.path('status.json'), 'utf8');
    const dead = store.create('train', { name: 'doctor-dead' }, 'doctor-dead');
    const gone = spawnSync(process.execPath, ['-e', ''], { env: { ELECTRON_RUN_AS_NODE: '1' } }).pid;
    assert.ok(gone);
    dead.update({ pid: gone });
    const temp = finished.path(`.results.json.${gone}.0badc0de.tmp`);
    writeFileSync(temp, 'partial');
    const old = new Date(Date.now() - 3600_000);
    utimesSync(temp, old, old);

    const marked = await vscode.commands.executeCommand<CheckRunsResult>('nad.checkRuns', { fix: 'interrupted' });
    const report = marked.reports.find((r) => r.dead.some((d) => d.id === dead.id));
    assert.ok(report, `the dead run is not reported: ${JSON.stringify(marked.reports)}`);
    assert.ok(report.tempFiles.some((t) => t.path === temp));
    assert.ok(marked.markedInterrupted >= 1);
    const status = JSON.parse(readFileSync(dead.path('status.json'), 'utf8')) as { state: string; pid: number };
    assert.equal(status.state, 'interrupted');
    assert.equal(status.pid, gone);
    assert.ok(existsSync(temp), 'marking runs interrupted must not remove temp files');

    const removed = await vscode.commands.executeCommand<CheckRunsResult>('nad.checkRuns', { fix: 'temp' });
    assert.ok(removed.tempFilesRemoved >= 1);
    assert.ok(!existsSync(temp));
    assert.equal(readFileSync(finished.path('status.json'), 'utf8'), finishedStatus);
    assert.ok(removed.reports.every((r) => !r.dead.some((d) => d.id === dead.id)));
  });
});
