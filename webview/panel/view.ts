// The run panel's page: header (name, state, backend, elapsed/ETA, progress, actions), the ACC/ASR
// table with copy buttons, per-epoch rows, curves, attention maps and the log. Sections re-render
// only when their part of the snapshot changes.
import { WIZARD_KINDS, type HostToPanel, type PanelAction, type PanelSnapshot, type RenderedPanel } from '../../src/shared/panel-protocol';
import { MAX_LOG_LINES, phaseLabel } from '../../src/shared/run-state';
import { AttentionView } from './attention';
import { Curves } from './charts';
import { SeriesCharts } from './series';
import { DefenseFigures } from './figures';
import { clear, h } from './dom';
import { epochCells, resultCells, toCsv, toMarkdown } from './format';
import { formatDuration } from '../../src/shared/format';

export interface ViewCallbacks {
  readonly action: (a: PanelAction) => void;
  readonly copy: (format: 'markdown' | 'csv', text: string) => void;
  readonly sample: (index: number) => void;
}

const STATE_TEXT: Record<string, string> = {
  queued: 'Queued',
  running: 'Running',
  finished: 'Finished',
  failed: 'Failed',
  cancelled: 'Cancelled',
  interrupted: 'Interrupted',
};

function button(label: string, onClick: () => void, secondary = true): HTMLElement {
  const b = h('vscode-button', { secondary }, label);
  b.addEventListener('click', onClick);
  return b;
}

function fillTable(table: HTMLTableElement, cells: readonly (readonly string[])[], caption: string): void {
  clear(table);
  table.append(h('caption', { class: 'visually-hidden' }, caption));
  const [head, ...body] = cells;
  table.append(h('thead', {}, h('tr', {}, ...head.map((c, i) => h('th', { scope: 'col', class: i > 0 ? 'num' : undefined }, c)))));
  table.append(
    h(
      'tbody',
      {},
      ...body.map((r) => h('tr', {}, ...r.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c) : h('td', { class: 'num' }, c))))),
    ),
  );
}

export class PanelView {
  private s: PanelSnapshot | undefined;
  private readonly title = h('h1', { id: 'run-title' });
  private readonly state = h('span', { class: 'state', role: 'status' });
  private readonly facts = h('dl', { class: 'facts' });
  private readonly provenanceList = h('dl', { class: 'facts provenance' });
  private readonly provenance = h('details', { class: 'provenance-block' }, h('summary', {}, 'Provenance'), this.provenanceList);
  private readonly times = h('dl', { class: 'facts times' });
  private readonly progressText = h('div', { class: 'progress-text', 'aria-live': 'polite' });
  private readonly progressBar = h('vscode-progress-bar', { 'aria-label': 'Run progress' }) as HTMLElement & {
    value?: number;
    max: number;
    indeterminate: boolean;
  };
  private readonly progress = h('div', { class: 'progress' }, this.progressText, this.progressBar);
  // Hidden until a run's error has a message: an empty error bar tells the user nothing.
  private readonly error = h('p', { class: 'error', role: 'alert', hidden: true });
  private readonly actions = h('div', { class: 'actions' });
  private readonly results = h('table', { id: 'results', class: 'data' });
  private readonly epochTable = h('table', { id: 'epochs', class: 'data' });
  private readonly epochsNote = h('p', { class: 'muted' });
  private readonly curves = new Curves();
  private readonly seriesCharts = new SeriesCharts();
  private readonly figures = new DefenseFigures('defense');
  private readonly classFigures = new DefenseFigures('classes');
  private readonly attackFigures = new DefenseFigures('attack');
  private classesSection: HTMLElement | undefined;
  private attackSection: HTMLElement | undefined;
  private seriesSection: HTMLElement | undefined;
  private readonly attention: AttentionView;
  private readonly log = h('pre', { class: 'log', tabindex: 0, 'aria-label': 'Run log' });
  private ticker: number | undefined;
  private epochsSection: HTMLElement | undefined;
  private curvesSection: HTMLElement | undefined;

  constructor(
    root: HTMLElement,
    private readonly cb: ViewCallbacks,
    initialSample: number,
  ) {
    this.attention = new AttentionView(cb.sample, initialSample);
    const section = (id: string, heading: string, ...children: Array<Node | string>): HTMLElement =>
      h('section', { 'aria-labelledby': id }, h('h2', { id }, heading), ...children);
    const copy = h(
      'div',
      { class: 'actions' },
      button('Copy as Markdown', () => this.copy('markdown')),
      button('Copy as CSV', () => this.copy('csv')),
    );
    clear(root);
    root.append(
      h(
        'header',
        {},
        h('div', { class: 'title-row' }, this.title, this.state),
        this.facts,
        this.provenance,
        this.times,
        this.progress,
        this.error,
        this.actions,
      ),
      section(
        'results-h',
        'ACC / ASR',
        h(
          'p',
          { class: 'muted' },
          'ACC: accuracy on clean test images. ASR: attack success rate, the share of triggered non-target images classified as the target.',
        ),
        this.results,
        copy,
      ),
      (this.epochsSection = section('epochs-h', 'Per epoch', this.epochsNote, h('div', { class: 'scroll' }, this.epochTable))),
      (this.curvesSection = section('curves-h', 'Curves', this.curves.element)),
      (this.attackSection = section(
        'attack-h',
        'Attack',
        h('p', { class: 'muted' }, 'The trigger gallery: what the attack does to training images, and the trigger ASR is measured with.'),
        this.attackFigures.element,
      )),
      (this.seriesSection = section('series-h', 'Defense', this.figures.element, this.seriesCharts.element)),
      (this.classesSection = section('classes-h', 'Per class', this.classFigures.element)),
      section('attention-h', 'Attention maps', this.attention.element),
      section('log-h', 'Log', this.log),
    );
    root.removeAttribute('aria-busy');
  }

  update(s: PanelSnapshot, msg: HostToPanel): void {
    this.s = s;
    const changed = msg.type === 'event' ? msg.event.type : msg.type;
    const all = changed === 'snapshot';
    if (all || changed === 'run' || changed === 'trust') this.header();
    if (all || ['run', 'started', 'phase', 'step', 'epoch', 'ended'].includes(changed)) this.showProgress();
    if (all || changed === 'table' || changed === 'epoch') this.tables();
    if (all || changed === 'epoch') this.curves.update(s.epochs);
    if (all || changed === 'series') this.seriesCharts.update(s.series);
    if (all || ['chart', 'images', 'facts'].includes(changed)) {
      this.figures.update(s);
      this.classFigures.update(s);
      this.attackFigures.update(s);
    }
    if (this.classesSection) this.classesSection.hidden = this.classFigures.isEmpty();
    if (this.attackSection) this.attackSection.hidden = this.attackFigures.isEmpty();
    if (this.seriesSection) this.seriesSection.hidden = s.series.length === 0 && this.figures.isEmpty();
    if (all || changed === 'attention' || changed === 'samples') this.attention.update(s.attention, s.samples);
    if (all) this.showLog(s.log, true);
    // log, phase and baseline events each add one line.
    else if (['log', 'phase', 'baseline'].includes(changed)) this.showLog(s.log.slice(-1), false);
  }

  private header(): void {
    const s = this.s;
    if (!s) return;
    const r = s.run;
    this.title.textContent = r.name;
    this.state.textContent = STATE_TEXT[r.state] ?? r.state;
    this.state.className = `state state-${r.state}`;
    clear(this.facts);
    const fact = (dl: HTMLElement, k: string, v: string): void => void dl.append(h('div', {}, h('dt', {}, k), h('dd', {}, v)));
    fact(this.facts, 'Kind', r.kind);
    if (r.backend) fact(this.facts, 'Backend', r.backend);
    clear(this.provenanceList);
    for (const [k, v] of r.provenance ?? []) fact(this.provenanceList, k, v);
    this.provenance.hidden = !r.provenance?.length;
    for (const [k, v] of r.facts) fact(this.facts, k, v);
    const error = r.error?.trim() ?? '';
    this.error.textContent = error;
    this.error.hidden = error === '';
    clear(this.actions);
    const running = r.state === 'running' || r.state === 'queued';
    if (running) this.actions.append(button('Cancel', () => this.cb.action('cancel'), false));
    // Restricted Mode: starting runs is refused anyway; do not offer it.
    const canRun = s.canRun !== false;
    if (canRun && r.resumable && !running) this.actions.append(button('Resume', () => this.cb.action('resume'), false));
    if (canRun && !running && r.kind !== 'unknown') this.actions.append(button('Run Again', () => this.cb.action('rerun')));
    if (canRun && !running && WIZARD_KINDS.includes(r.kind))
      this.actions.append(button('Run Again With Changes…', () => this.cb.action('rerunWithChanges')));
    this.actions.append(
      button('Reveal Folder', () => this.cb.action('revealFolder')),
      button('Show Log', () => this.cb.action('showLog')),
    );
    window.clearInterval(this.ticker);
    this.ticker = running ? window.setInterval(() => this.showTimes(), 1000) : undefined;
    this.showTimes();
  }

  private showTimes(): void {
    const r = this.s?.run;
    clear(this.times);
    if (!r?.startedAt) return;
    const start = Date.parse(r.startedAt);
    const end = r.endedAt ? Date.parse(r.endedAt) : r.state === 'running' ? Date.now() : undefined;
    const add = (k: string, v: string): void => void this.times.append(h('div', {}, h('dt', {}, k), h('dd', {}, v)));
    add('Started', new Date(start).toLocaleString());
    if (end !== undefined) add(r.state === 'running' ? 'Elapsed' : 'Took', formatDuration((end - start) / 1000));
    const eta = this.s?.progress?.etaSeconds;
    if (r.state === 'running' && eta !== undefined) add('ETA', formatDuration(eta));
  }

  private showProgress(): void {
    const p = this.s?.progress;
    const running = this.s?.run.state === 'running';
    this.progress.hidden = !running;
    if (!running) return;
    if (!p) {
      this.progressText.textContent = 'Loading data and models…';
      this.progressBar.indeterminate = true;
      return;
    }
    const parts = [`${p.label || phaseLabel(p.phase)}: epoch ${Math.max(1, p.epoch)} of ${p.epochs}`];
    if (p.steps > 0) parts.push(`step ${p.step} of ${p.steps}`);
    if (typeof p.loss === 'number' && Number.isFinite(p.loss)) parts.push(`loss ${p.loss.toFixed(4)}`);
    this.progressText.textContent = parts.join(' · ');
    const done = p.steps > 0 ? (Math.max(0, p.epoch - 1) + p.step / p.steps) / p.epochs : 0;
    this.progressBar.indeterminate = p.steps === 0;
    this.progressBar.max = 100;
    this.progressBar.value = Math.round(done * 100);
    this.showTimes();
  }

  private tables(): void {
    const s = this.s;
    if (!s) return;
    fillTable(
      this.results,
      s.table.length
        ? resultCells(s.table)
        : [
            ['Model', 'ACC %', 'ASR %'],
            ['–', '–', '–'],
          ],
      'ACC and ASR of each model',
    );
    fillTable(this.epochTable, epochCells(s.epochs), 'Loss, ACC and ASR after each epoch');
    this.epochsNote.textContent = s.epochs.length ? '' : 'No epoch has finished yet.';
    this.epochsNote.hidden = s.epochs.length > 0;
    this.epochTable.hidden = s.epochs.length === 0;
    // Evaluations and attention runs do not train: no epochs, no curves.
    const trains = s.epochs.length > 0 || s.run.state === 'running' || s.run.state === 'queued';
    for (const el of [this.epochsSection, this.curvesSection]) if (el) el.hidden = !trains;
  }

  private showLog(lines: readonly string[], replace: boolean): void {
    const atBottom = this.log.scrollTop + this.log.clientHeight >= this.log.scrollHeight - 4;
    if (replace) clear(this.log);
    for (const line of lines) this.log.append(h('div', {}, line));
    while (this.log.childElementCount > MAX_LOG_LINES) this.log.firstElementChild?.remove();
    if (atBottom || replace) this.log.scrollTop = this.log.scrollHeight;
  }

  private copy(format: 'markdown' | 'csv'): void {
    const s = this.s;
    if (!s) return;
    this.cb.copy(format, format === 'csv' ? toCsv(s.table, s.epochs) : toMarkdown(s.run.name, s.table, s.epochs));
  }

  rendered(): RenderedPanel {
    const cells = Array.from(this.results.querySelectorAll('tr')).map((tr) =>
      Array.from(tr.children).map((c) => c.textContent?.trim() ?? ''),
    );
    return {
      title: this.title.textContent ?? '',
      state: this.state.textContent ?? '',
      table: cells,
      epochRows: this.epochTable.querySelectorAll('tbody tr').length,
      attentionMaps: this.attention.count(),
      chartPoints: this.curves.points() + this.seriesCharts.points(),
      figures: this.figures.counts(),
      classes: this.classFigures.counts(),
      gallery: {
        images: this.attackFigures.counts().images,
        captions: Array.from(this.attackFigures.element.querySelectorAll('.image-caption')).map((c) => c.textContent ?? ''),
      },
      provenance: Array.from(this.provenanceList.children).map(
        (row) => `${row.querySelector('dt')?.textContent ?? ''}: ${row.querySelector('dd')?.textContent ?? ''}`,
      ),
      logLines: this.log.childElementCount,
    };
  }
}
