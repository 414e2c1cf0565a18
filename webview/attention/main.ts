// The attention-maps editor: each model's map of the chosen residual group over the chosen image, side by
// side, with clean/triggered, image navigation, a colour legend and the value under the pointer or cursor.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-radio/index.js';
import '@vscode-elements/elements/dist/vscode-radio-group/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import type { AttentionHostMessage } from '../../src/shared/attention-protocol';
import { onThemeChange } from '../common/vscode-api';
import { build, setView, showProblem } from './page';
import { renderPanels } from './panels';
import { decodePixels } from './render';
import { channel, clampView, epochTimeline, state } from './state';

window.addEventListener('message', (event: MessageEvent<AttentionHostMessage>) => {
  const msg = event.data;
  switch (msg.type) {
    case 'show': {
      const { maps } = msg;
      const epochs = epochTimeline(maps, msg.epochs);
      state.loaded = {
        source: msg.source,
        maps,
        pixels: { clean: maps.images.clean.map(decodePixels), triggered: maps.images.triggered.map(decodePixels) },
        ...(epochs ? { epochs } : msg.epochs?.problem ? { epochsProblem: msg.epochs.problem } : {}),
      };
      state.view = clampView(state.view, maps, epochs);
      channel.save(state.view);
      build(state.loaded);
      break;
    }
    case 'problem':
      showProblem(msg.source, msg.problem);
      break;
    default: {
      const _exhaustive: never = msg;
      void _exhaustive;
    }
  }
});

// Page keys: PageUp/PageDown change the image, T toggles clean/triggered (not while typing in a control).
window.addEventListener('keydown', (e) => {
  if (!state.loaded || e.altKey || e.ctrlKey || e.metaKey) return;
  const count = state.loaded.maps.labels.length;
  if (e.key === 'PageDown' && state.view.image < count - 1) setView({ image: state.view.image + 1 });
  else if (e.key === 'PageUp' && state.view.image > 0) setView({ image: state.view.image - 1 });
  else if ((e.key === 't' || e.key === 'T') && !(e.target instanceof HTMLInputElement))
    setView({ input: state.view.input === 'clean' ? 'triggered' : 'clean' });
});

onThemeChange(() => {
  if (state.view.scale === 'theme') renderPanels();
});

channel.post({ type: 'ready' });
