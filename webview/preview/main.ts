// The attack preview page: the trigger gallery of an attack on a sample of the user's data, drawn while the
// worker poisons it (a status line and its log), kept in the webview state so a window reload shows it again.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { PreviewHostMessage, PreviewState, PreviewViewMessage } from '../../src/shared/preview-protocol';
import { imagesFigure } from '../common/images';
import { connect, h } from '../common/vscode-api';

const channel = connect<PreviewViewMessage, PreviewState>();
const root = document.getElementById('root') as HTMLElement;

const STATUS: Record<PreviewState['status'], string> = {
  running: 'Poisoning a sample of the data…',
  done: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

let shown: PreviewState | undefined;

function render(s: PreviewState): void {
  shown = s;
  channel.save(s);
  root.replaceChildren();
  const status = h('span', { class: `state state-${s.status === 'done' ? 'finished' : s.status}`, role: 'status' }, STATUS[s.status]);
  const header = h('header', {}, h('div', { class: 'title-row' }, h('h1', {}, s.title), status));
  if (s.status === 'running') {
    const cancel = h('vscode-button', { secondary: true }, 'Cancel');
    cancel.addEventListener('click', () => channel.post({ type: 'cancel' }));
    header.append(h('div', { class: 'actions' }, cancel));
  }
  if (s.summary) header.append(h('p', { class: 'summary' }, s.summary));
  if (s.error) header.append(h('p', { class: 'error', role: 'alert' }, s.error));
  root.append(header);
  const figures = h('section', { 'aria-label': 'Trigger gallery' });
  for (const f of s.figures) figures.append(imagesFigure(f));
  if (s.status === 'done' && s.figures.length === 0)
    figures.append(h('p', { class: 'muted' }, 'The attack changed no image of the sample.'));
  root.append(figures);
  if (s.log.length)
    root.append(h('details', { open: s.status === 'running' }, h('summary', {}, 'Log'), h('pre', { class: 'log' }, s.log.join('\n'))));
  root.removeAttribute('aria-busy');
}

window.addEventListener('message', (e: MessageEvent<PreviewHostMessage>) => {
  const m = e.data;
  if (m.type === 'state') render(m.state);
  else if (m.type === 'probe')
    channel.post({
      type: 'rendered',
      id: m.id,
      rendered: {
        title: shown?.title ?? '',
        status: shown?.status ?? '',
        images: root.querySelectorAll('canvas.figure-image').length,
        captions: Array.from(root.querySelectorAll('.image-caption')).map((c) => c.textContent ?? ''),
      },
    });
});

const saved = channel.state();
if (saved) render(saved);
channel.post({ type: 'ready' });
