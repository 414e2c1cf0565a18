// The webview side of postMessage and state, typed by the protocol of the page using it.

interface VsCodeApi<State> {
  postMessage(message: unknown): void;
  getState(): State | undefined;
  setState(state: State): void;
}

declare function acquireVsCodeApi<State>(): VsCodeApi<State>;

export interface Channel<Out, State> {
  post(message: Out): void;
  state(): State | undefined;
  save(state: State): void;
}

/** acquireVsCodeApi may be called once per page: call this once, at start. */
export function connect<Out, State>(): Channel<Out, State> {
  const api = acquireVsCodeApi<State>();
  return {
    post: (m) => api.postMessage(m),
    state: () => api.getState(),
    save: (s) => api.setState(s),
  };
}

/** Create an element with attributes and children (text or nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Record<string, string | boolean | undefined>,
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K];
export function h(tag: string, attrs?: Record<string, string | boolean | undefined>, ...children: Array<Node | string>): HTMLElement;
export function h(tag: string, attrs: Record<string, string | boolean | undefined> = {}, ...children: Array<Node | string>): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children);
  return el;
}

/** Value of a theme colour variable (`--vscode-...`), resolved for the current theme. */
export function themeColour(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

/** Run `fn` whenever VS Code switches the colour theme (it rewrites the body's class and style). */
export function onThemeChange(fn: () => void): void {
  new MutationObserver(fn).observe(document.body, { attributes: true, attributeFilter: ['class', 'style'] });
}
