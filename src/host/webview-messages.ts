// Messages from webview pages are untrusted: each page's messages are checked against its schema
// (src/shared/message-schemas.ts) before its handler sees them. A malformed message is logged to the
// NAD output channel with the page, the reason and a short preview, and dropped; nothing throws.
import * as vscode from 'vscode';
import type { GenericSchema } from 'valibot';
import { checkMessage, messagePreview } from '../shared/message-schemas';
import { nadLog } from './output';

/** How many messages each page has refused since activation (tests read it through the API). */
export const refusedMessages = new Map<string, number>();

/** `webview.onDidReceiveMessage`, with every message checked against `schema` first. */
export function onCheckedMessage<T>(
  webview: vscode.Webview,
  page: string,
  schema: GenericSchema<unknown, T>,
  handler: (message: T) => unknown,
): vscode.Disposable {
  return webview.onDidReceiveMessage((raw: unknown) => {
    const checked = checkMessage(schema, raw);
    if (checked.ok) {
      handler(checked.message);
      return;
    }
    refusedMessages.set(page, (refusedMessages.get(page) ?? 0) + 1);
    nadLog().warn(`${page}: dropped a malformed message from the page (${checked.reason}): ${messagePreview(raw)}`);
  });
}
