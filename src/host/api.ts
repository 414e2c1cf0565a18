// What `activate` returns: the Runs view's model, the run manager and panels. Integration tests read
// it; other extensions could too.
import type { NadExtensionApi } from './history/runs-tree';
import type { RunsApi } from './runs/register';
import type { AttentionEditorProvider } from './attention/editor';
import type { ComparePanels } from './history/compare-page';
import type { HistoryPage } from './history/table-page';
import type { MatrixPages } from './matrix/page';
import type { PreviewPages } from './preview/page';

export interface ActivationTiming {
  /** From the first line of the bundle to the end of its top-level code: evaluating our modules. */
  readonly loadMs: number;
  /** activate() itself: registering views, commands, serializers. */
  readonly activateMs: number;
}

/** The review features in what `activate` returns (integration tests read them). */
export interface ReviewApi {
  readonly attention: AttentionEditorProvider;
  readonly historyPage: HistoryPage;
  readonly compare: ComparePanels;
  readonly matrices: MatrixPages;
  readonly previews: PreviewPages;
}

export interface NadApi extends NadExtensionApi, RunsApi {
  readonly activation: ActivationTiming;
}
