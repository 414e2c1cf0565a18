// `nad matrix <file>`: an attack x defense matrix from a *.nad-matrix.json file (or the paper's Table 1 on
// some data), run cell by cell as ordinary runs, resumable, printed as a table in the chosen format.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../engine/types';
import { describeProgress, runMatrix } from '../runs/matrix/run';
import { paperTable1, readMatrixFile, REGISTRY_TITLES, type MatrixSpec } from '../runs/matrix/spec';
import { formatTable, matrixTable, type TableFormat } from '../runs/matrix/table';
import { matrixSchema } from '../runs/matrix/schema';
import { formatDuration } from '../shared/format';
import { controller } from './execute';
import { num, type CommonFlags } from './options';
import { createReporter } from './report';
import { addExecutorOptions, pollMsOf, slurmOptionsOf } from './executor';
import { submitMatrix, waitForMatrix } from '../runs/executors/slurm-submit';

type Flags = CommonFlags & Record<string, string | boolean | undefined>;

const FORMATS: Readonly<Record<string, TableFormat>> = {
  md: 'markdown',
  markdown: 'markdown',
  csv: 'csv',
  latex: 'latex',
  tex: 'latex',
  json: 'json',
};

export async function runMatrixCli(spec: MatrixSpec, f: Flags): Promise<void> {
  const format = FORMATS[String(f.format ?? (f.json ? 'json' : 'md'))];
  if (!format) throw new InputError(`--format must be md, csv, latex or json, got '${String(f.format)}'`);
  const reporter = createReporter({ quiet: true });
  const t0 = Date.now();
  const verbose = !f.quiet && process.stderr.isTTY;
  const slurm = slurmOptionsOf(f);
  const slurmCtx = slurm && {
    cwd: process.cwd(),
    runsDir: f.runsDir,
    slurm,
    signal: controller.signal,
    pollMs: pollMsOf(f),
    onLine: (line: string) => process.stderr.write(`${line}\n`),
  };
  if (slurmCtx && f.wait === false) {
    const sub = await submitMatrix(spec, slurmCtx);
    process.stderr.write(`matrix ${sub.id}: submitted to Slurm; folder ${sub.dir}; run the same command again to wait for the table\n`);
    return;
  }
  const r = slurmCtx
    ? await waitForMatrix(await submitMatrix(spec, slurmCtx), slurmCtx)
    : await runMatrix(spec, {
        cwd: process.cwd(),
        runsDir: f.runsDir,
        signal: controller.signal,
        onEvent: verbose ? reporter.onEvent : undefined,
        onProgress: (p) => {
          const line = describeProgress(p);
          if (line) process.stderr.write(`${line}\n`);
        },
      });
  reporter.stop();
  const table = matrixTable(spec, r.outcomes, REGISTRY_TITLES);
  const failed = r.outcomes.filter((o) => o.state !== 'finished');
  process.stdout.write(formatTable(table, format));
  process.stderr.write(
    `\nmatrix ${r.id}: ${r.outcomes.length - failed.length} of ${r.outcomes.length} cells finished in ${formatDuration((Date.now() - t0) / 1000)}; ` +
      `folder ${r.dir}${failed.length ? `; ${failed.length} did not finish (run the same command again to retry them)` : ''}\n`,
  );
  if (failed.length) process.exitCode = 1;
}

export function addMatrixCommand(program: Command): void {
  const matrix = program
    .command('matrix')
    .argument('[file]', 'a *.nad-matrix.json file (see docs/matrix.md)')
    .description(
      "run an attack x defense matrix (the NAD paper's Table 1): each attacked model trains once per seed, then every defense runs on it; " +
        'running it again keeps finished cells and resumes an interrupted one',
    )
    .option('--runs-dir <dir>', 'where run folders go (default: ./.nad/runs; matrices go beside it, in ./.nad/matrices)')
    .option('--json', 'the table as JSON on stdout (same as --format json)')
    .option('-q, --quiet', 'only one line per cell on stderr')
    .option(
      '--paper-table-1 <data>',
      "the paper's Table 1 shape on this data instead of a file (its attacks x none, finetuning, Fine-Pruning, MCR, NAD)",
    )
    .option('--seeds <list>', 'with --paper-table-1: comma-separated seeds', '0')
    .option('--schema', 'print the JSON Schema of *.nad-matrix.json files (from the attack and defense registries) and exit')
    .option('--format <f>', 'the table as md, csv, latex or json (default md; json with --json)')
    .action(async (file: string | undefined, f: Flags) => {
      if (f.schema) {
        process.stdout.write(JSON.stringify(matrixSchema(), null, 2) + '\n');
        return;
      }
      let spec: MatrixSpec;
      if (typeof f.paperTable1 === 'string') {
        if (file) throw new InputError('give a matrix file or --paper-table-1, not both');
        const seeds = String(f.seeds)
          .split(',')
          .map((s) => num(s.trim(), '--seeds', { int: true, min: 0 }));
        const data = f.paperTable1 === 'mnist' ? 'mnist' : resolve(f.paperTable1);
        spec = paperTable1(data, seeds);
      } else {
        if (!file) throw new InputError('give a *.nad-matrix.json file, or --paper-table-1 <data>');
        spec = readMatrixFile(file);
      }
      await runMatrixCli(spec, f);
    });
  addExecutorOptions(matrix);
}
