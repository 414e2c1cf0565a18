// Entry of the run panel's webview: receives the host's snapshot and live updates, folds them with the
// same function as the host (applyPanelMessage) and renders. Components: @vscode-elements/elements.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-radio/index.js';
import '@vscode-elements/elements/dist/vscode-radio-group/index.js';
import type { HostToPanel, PanelSnapshot } from '../../src/shared/panel-protocol';
import { applyPanelMessage } from '../../src/shared/panel-protocol';
import { PanelView } from './view';
import { vscode } from '../common/panel-api';

let snapshot: PanelSnapshot | undefined;
// The selected sample image survives a reload with the run folder (the serializer's state).
let sample = vscode.getState()?.sample ?? 0;

const root = document.getElementById('root') as HTMLElement;
const view = new PanelView(
  root,
  {
    action: (action) => vscode.postMessage({ type: 'action', action }),
    copy: (format, text) => vscode.postMessage({ type: 'copy', format, text }),
    sample: (index) => {
      sample = index;
      if (snapshot) vscode.setState({ runDir: snapshot.run.dir, sample });
    },
  },
  sample,
);

window.addEventListener('message', (event: MessageEvent<HostToPanel>) => {
  const msg = event.data;
  try {
    if (msg.type === 'probe') {
      vscode.postMessage({ type: 'rendered', id: msg.id, panel: view.rendered() });
      return;
    }
    if (!snapshot && msg.type !== 'snapshot') return;
    snapshot = snapshot ? applyPanelMessage(snapshot, msg) : (msg as Extract<HostToPanel, { type: 'snapshot' }>).snapshot;
    if (msg.type === 'snapshot') vscode.setState({ runDir: snapshot.run.dir, sample });
    view.update(snapshot, msg);
  } catch (e) {
    vscode.postMessage({ type: 'error', message: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) });
  }
});

window.addEventListener('error', (e) => vscode.postMessage({ type: 'error', message: `${e.message} (${e.filename}:${e.lineno})` }));
vscode.postMessage({ type: 'ready' });
