// Terminal output of the CLI: a progress bar on a TTY (stderr), plain lines otherwise, and the ACC/ASR
// table. With --json nothing but the result object goes to stdout.
import { SingleBar, Presets } from 'cli-progress';
import type { JobEvent, ResultRow } from '../runs/jobs';

export interface Reporter {
  readonly onEvent: (e: JobEvent) => void;
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
  const onEvent = (e: JobEvent): void => {
    switch (e.type) {
      case 'started':
        line(`run ${e.runId} (${e.runDir})`);
        break;
      case 'phase':
        phaseLabel = e.label;
        epochs = e.epochs ?? 0;
        line(`== ${e.label}${e.epochs ? ` (${e.epochs} epochs)` : ''}`);
        break;
      case 'progress': {
        const p = e.progress;
        if (p.type === 'baseline') line(`   before: ACC ${fmt(p.acc)}  ASR ${fmt(p.asr)}`);
        else if (p.type === 'epoch') line(`   epoch ${String(p.epoch).padStart(3)}/${p.epochs}  loss ${p.loss.toFixed(4)}  ACC ${fmt(p.acc)}  ASR ${fmt(p.asr)}  lr ${p.lr}  ${p.seconds.toFixed(1)} s  ${p.imagesPerSecond.toFixed(0)} img/s`);
        else if (tty && !opts.quiet) {
          const total = epochs * p.steps;
          const value = (p.epoch - 1) * p.steps + p.step;
          if (!bar) {
            bar = new SingleBar({ format: `   ${phaseLabel.slice(0, 30)} [{bar}] {percentage}% | epoch {epoch} | loss {loss} | ETA {eta_formatted}`, hideCursor: true, stream: process.stderr }, Presets.shades_classic);
            bar.start(total, value, { epoch: p.epoch, loss: p.loss.toFixed(4) });
          } else bar.update(value, { epoch: p.epoch, loss: p.loss.toFixed(4) });
        }
        break;
      }
      case 'table':
        break;
      case 'attention':
      case 'samples':
        break;
      case 'log':
        line(`   ${e.message}`);
        break;
      default: {
        const never: never = e;
        void never;
      }
    }
  };
  return { onEvent, stop: () => bar?.stop() };
}

const LABELS: Record<ResultRow['model'], string> = {
  backdoored: 'Backdoored',
  teacher: 'Teacher (finetuned)',
  erased: 'NAD (erased)',
  trained: 'Trained (backdoored)',
  finetuned: 'Finetuned',
  evaluated: 'Model',
};

export function formatTable(rows: readonly ResultRow[]): string {
  const head = ['Model', 'ACC %', 'ASR %'];
  const body = rows.map((r) => [LABELS[r.model], fmt(r.acc), fmt(r.asr)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const row = (cells: string[]): string => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |';
  return [row(head), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...body.map(row)].join('\n');
}
