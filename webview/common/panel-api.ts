// The webview side of the VS Code API: posting to the host and the state kept across reloads.
import type { PanelState, PanelToHost } from '../../src/shared/panel-protocol';

interface VsCodeApi {
  postMessage(msg: PanelToHost): void;
  getState(): PanelState | undefined;
  setState(state: PanelState): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

/** acquireVsCodeApi may be called once per page. */
export const vscode: VsCodeApi = acquireVsCodeApi();
