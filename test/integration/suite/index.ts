// Runs inside the extension host (the `extensionTestsPath` of @vscode/test-electron): mocha, tdd style,
// over every *.test.js bundled next to this file. The reporter's lines also go to NAD_TEST_RESULTS_DIR
// (report.txt, and the counts in results.json): a browser workbench has no stdout for the runner to show.
import Mocha from 'mocha';
import { appendFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format } from 'node:util';

export interface SuiteResults {
  readonly passes: number;
  readonly failures: number;
  readonly pending: number;
  readonly failed: readonly { readonly title: string; readonly error: string }[];
}

export function run(): Promise<void> {
  const resultsDir = process.env.NAD_TEST_RESULTS_DIR;
  const report = resultsDir ? join(resultsDir, 'report.txt') : undefined;
  Mocha.reporters.Base.consoleLog = (...args: unknown[]): void => {
    const line = format(...args);
    console.log(line);
    if (report) appendFileSync(report, line + '\n');
  };
  // NAD_TEST_GREP narrows the suite to matching tests (while working on one feature).
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 20_000, reporter: 'spec', grep: process.env.NAD_TEST_GREP });
  for (const file of readdirSync(__dirname)
    .filter((f) => f.endsWith('.test.js'))
    .sort())
    mocha.addFile(join(__dirname, file));
  return new Promise((resolve, reject) => {
    const failed: { title: string; error: string }[] = [];
    const runner = mocha.run((failures) => {
      const stats = runner.stats;
      const results: SuiteResults = { passes: stats?.passes ?? 0, failures, pending: stats?.pending ?? 0, failed };
      if (resultsDir) writeFileSync(join(resultsDir, 'results.json'), JSON.stringify(results, null, 2));
      if (failures > 0) reject(new Error(`${failures} extension-host test(s) failed`));
      else resolve();
    });
    runner.on('fail', (test, err: Error) => failed.push({ title: test.fullTitle(), error: err.stack ?? String(err) }));
  });
}
