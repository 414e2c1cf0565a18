// The attack preview page ("NAD: Preview Attack"): the host runs the preview in a worker and sends the page
// its state as it changes; the page draws the trigger gallery and keeps the state for a window reload.
import type { ImagesFigure } from './run-events';

export interface PreviewState {
  readonly title: string;
  readonly status: 'running' | 'done' | 'failed' | 'cancelled';
  /** What the attack did (its description, how many images it changed, the test trigger). */
  readonly summary?: string;
  readonly error?: string;
  readonly figures: readonly ImagesFigure[];
  /** Progress lines of the worker (a surrogate model's training, PGD steps...). */
  readonly log: readonly string[];
}

export interface PreviewRendered {
  readonly title: string;
  readonly status: string;
  readonly images: number;
  readonly captions: readonly string[];
}

/** Host to page. */
export type PreviewHostMessage = { readonly type: 'state'; readonly state: PreviewState } | { readonly type: 'probe'; readonly id: number };

/** Page to host. */
export type PreviewViewMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'cancel' }
  | { readonly type: 'rendered'; readonly id: number; readonly rendered: PreviewRendered };
