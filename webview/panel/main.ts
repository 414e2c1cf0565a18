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
    const message = e instanceof Error ? `${e.message || e.name}\n${e.stack ?? ''}` : String(e);
    vscode.postMessage({ type: 'error', message: message.trim() || 'an error without a message' });
  }
});

window.addEventListener('error', (e) => vscode.postMessage({ type: 'error', message: `${e.message} (${e.filename}:${e.lineno})` }));
// The handshake: 'ready' until the first snapshot comes. A 'ready' can be lost (posted while the extension
// host that owns this panel restarts); without a snapshot the page would stay blank for good.
const READY_RETRY_MS = 2000;
const READY_TRIES = 60;
let readyTries = 0;
const sayReady = (): void => {
  if (snapshot || readyTries++ >= READY_TRIES) return;
  vscode.postMessage({ type: 'ready' });
  window.setTimeout(sayReady, READY_RETRY_MS);
};
sayReady();
