// Terminal output of the CLI: a progress bar on a TTY (stderr), plain lines otherwise, and the ACC/ASR
// table. With --json nothing but the result object goes to stdout.
import { SingleBar, Presets } from 'cli-progress';
import type { ResultRow, RunEvent } from '../shared/run-events';

const lossText = (loss: number | undefined): string => (typeof loss === 'number' && Number.isFinite(loss) ? loss.toFixed(4) : '–');

export interface Reporter {
  readonly onEvent: (e: RunEvent) => void;
  stop(): void;
}

const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : '-');

export function createReporter(opts: { quiet: boolean }): Reporter {
  const tty = process.stderr.isTTY === true;
  let bar: SingleBar | undefined;
  let phaseLabel = '';
  let epochs = 0;
  const line = (s: string): void => {
    if (opts.quiet) return;
    if (bar) bar.stop();
    bar = undefined;
    process.stderr.write(s + '\n');
  };
  const onEvent = (e: RunEvent): void => {
    switch (e.type) {
      case 'started':
        line(`run ${e.runId} (${e.runDir})`);
        break;
      case 'phase':
        phaseLabel = e.label;
        epochs = e.epochs;
        line(`== ${e.label}${e.epochs ? ` (${e.epochs} epochs)` : ''}`);
        break;
      case 'baseline':
        line(`   before: ACC ${fmt(e.acc)}  ASR ${fmt(e.asr)}`);
        break;
      case 'epoch':
        line(
          `   epoch ${String(e.epoch).padStart(3)}/${e.epochs}  loss ${e.loss.toFixed(4)}  ACC ${fmt(e.acc)}  ASR ${fmt(e.asr)}  lr ${e.lr}  ${e.seconds.toFixed(1)} s  ${e.imagesPerSecond.toFixed(0)} img/s`,
        );
        break;
      case 'step': {
        if (!tty || opts.quiet) break;
        const total = epochs * e.steps;
        const value = (e.epoch - 1) * e.steps + e.step;
        if (!bar) {
          bar = new SingleBar(
            {
              format: `   ${phaseLabel.slice(0, 30)} [{bar}] {percentage}% | epoch {epoch} | loss {loss} | ETA {eta_formatted}`,
              hideCursor: true,
              stream: process.stderr,
            },
            Presets.shades_classic,
          );
          bar.start(total, value, { epoch: e.epoch, loss: lossText(e.loss) });
        } else bar.update(value, { epoch: e.epoch, loss: lossText(e.loss) });
        break;
      }
      case 'series': {
        const last = e.points[e.points.length - 1];
        if (last)
          line(`   ${e.title}: ${e.points.length} points, last at ${e.xLabel} ${last.x}: ACC ${fmt(last.acc)}  ASR ${fmt(last.asr)}`);
        break;
      }
      case 'facts':
        line(`   ${e.title}:`);
        for (const f of e.facts) line(`     ${f.label}: ${f.value}`);
        break;
      case 'chart':
        line(`   (chart: ${e.title}; in the run panel)`);
        break;
      case 'images':
        line(`   (${e.images.length} images: ${e.title}; in the run panel)`);
        break;
      case 'log':
        line(`   ${e.message}`);
        break;
      case 'table':
      case 'attention':
      case 'samples':
      case 'ended':
        break;
      default: {
        const never: never = e;
        void never;
      }
    }
  };
  return { onEvent, stop: () => bar?.stop() };
}

const LABELS: Readonly<Record<string, string>> = {
  backdoored: 'Backdoored',
  teacher: 'Teacher (finetuned)',
  erased: 'NAD (erased)',
  trained: 'Trained (backdoored)',
  finetuned: 'Finetuned',
  evaluated: 'Model',
};

export function formatTable(rows: readonly ResultRow[]): string {
  const ra = rows.some((r) => r.ra !== undefined);
  const head = ['Model', 'ACC %', 'ASR %', ...(ra ? ['RA %'] : [])];
  const body = rows.map((r) => [
    LABELS[r.model] ?? r.model.charAt(0).toUpperCase() + r.model.slice(1),
    fmt(r.acc),
    fmt(r.asr),
    ...(ra ? [fmt(r.ra ?? NaN)] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const row = (cells: string[]): string =>
    '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |';
  return [
    row(head),
    '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|',
    ...body.map(row),
  ].join('\n');
}
