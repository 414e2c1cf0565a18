// What `activate` returns: the Runs view's model, the run manager and panels. Integration tests read
// it; other extensions could too.
import type { NadExtensionApi } from './history/runs-tree';
import type { RunsApi } from './runs/register';

export interface ActivationTiming {
  /** From the first line of the bundle to the end of its top-level code: evaluating our modules. */
  readonly loadMs: number;
  /** activate() itself: registering views, commands, serializers. */
  readonly activateMs: number;
}

export interface NadApi extends NadExtensionApi, RunsApi {
  readonly activation: ActivationTiming;
}
