// One HTML shell for every webview of the extension: a strict CSP (nothing remote, scripts only by
// nonce), the bundled script and CSS from dist/ and media/, and the webview options that go with it.
import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';

/** Webview options: scripts on, and only the extension's dist/ and media/ folders readable. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

export interface PageParts {
  /** Bundle in dist/webview/, e.g. `attention.js`. */
  readonly script: string;
  /** Stylesheets in media/. */
  readonly styles: readonly string[];
  readonly title: string;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, parts: PageParts): string {
  const nonce = randomBytes(16).toString('base64');
  const src = (...p: string[]): string => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...p)).toString();
  // Lit (inside @vscode-elements) adopts constructed stylesheets, which CSP does not govern; our own
  // CSS comes from files, so no 'unsafe-inline' is needed.
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  const links = parts.styles.map((s) => `<link rel="stylesheet" href="${src('media', s)}">`).join('\n    ');
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <meta http-equiv="Content-Security-Policy" content="${csp}">
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    ${links}
    <title>${escapeHtml(parts.title)}</title>
  </head>
  <body>
    <main id="root" aria-busy="true"><p class="loading">Loading…</p></main>
    <script nonce="${nonce}" src="${src('dist', 'webview', parts.script)}"></script>
  </body>
</html>`;
}
