// Host <-> attention-maps webview: the maps.json layout (as src/engine/attention-snapshot.ts writes it) and
// the messages about it. Plain types only: the webview bundle imports this file too.

import type { AttentionSnapshot } from './run-events';

export type AttentionInput = 'clean' | 'triggered';

/** One model's maps in maps.json: the same shape the run's events carry. */
export type AttentionSnapshotData = AttentionSnapshot;

/** attention/maps.json, validated. */
export interface AttentionMapsData {
  readonly version: 1;
  readonly image: { readonly height: number; readonly width: number; readonly channels: number };
  /** True class per image; -1 = unknown (images the user picked). */
  readonly labels: readonly number[];
  /** The label the backdoor gives each triggered image; -1 = unknown. */
  readonly attackLabels: readonly number[];
  readonly classNames: readonly string[] | null;
  /** Base64 HWC uint8 pixels per image. */
  readonly images: { readonly clean: readonly string[]; readonly triggered: readonly string[] };
  readonly snapshots: readonly AttentionSnapshotData[];
}

/** Where a run stores the maps after every training epoch, one snapshot per line (beside attention/maps.json). */
export const EPOCH_MAPS_FILE = 'attention/epochs.jsonl';

/** attention/epochs.jsonl, validated: each trained model's maps after every epoch, in file order. */
export interface EpochMapsData {
  readonly snapshots: readonly AttentionSnapshotData[];
  /** What was wrong with the file (naming it and the line); the snapshots are those before the problem. */
  readonly problem?: string;
}

export type ColourScale = 'viridis' | 'theme';

/** What the view shows; kept in the webview's state so a reload comes back to it. */
export interface AttentionViewState {
  readonly image: number;
  readonly group: number;
  readonly input: AttentionInput;
  /** Indices into `snapshots` that are hidden. */
  readonly hidden: readonly number[];
  readonly scale: ColourScale;
  /** Heatmap opacity over the image, 0..1. */
  readonly opacity: number;
  /** One colour range for all models side by side (fair comparison) instead of one per model. */
  readonly sharedRange: boolean;
  /** The epoch whose maps the slider shows for the trained model; absent = the final maps. */
  readonly epoch?: number;
}

/** Where the maps came from, for the header. */
export interface AttentionSource {
  /** The file shown, workspace-relative when possible. */
  readonly file: string;
  /** Label of the run folder that holds it, when it is in one. */
  readonly run?: string;
}

export type AttentionHostMessage =
  | {
      readonly type: 'show';
      readonly source: AttentionSource;
      readonly maps: AttentionMapsData;
      /** The run's per-epoch maps (attention/epochs.jsonl beside maps.json); absent for runs without them. */
      readonly epochs?: EpochMapsData;
    }
  | { readonly type: 'problem'; readonly source: AttentionSource; readonly problem: string };

/** What the view drew: lets the host (and tests) know the webview really rendered. */
export interface AttentionRendered {
  readonly state: AttentionViewState;
  /** Per visible model: name and the value range its colours span. */
  readonly panels: ReadonlyArray<{
    readonly model: string;
    /** The epoch of the maps drawn; -1 = final. */
    readonly epoch: number;
    readonly min: number;
    readonly max: number;
    readonly prediction: number;
  }>;
}

export type AttentionViewMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'rendered'; readonly rendered: AttentionRendered }
  | { readonly type: 'problemShown'; readonly problem: string };
