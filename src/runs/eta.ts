// Estimated time left in a run, from the pace of its training steps and evaluations so far. Later
// phases of the same run (NAD after the teacher's finetuning) are estimated at the current pace.
import type { Phase, RunEvent } from '../shared/run-events';

/** A NAD step also runs the teacher forward: it costs about this much more than a finetuning step. */
const NAD_STEP_FACTOR = 1.3;

export interface PlannedPhase {
  readonly phase: Phase;
  readonly epochs: number;
}

export class EtaClock {
  private current: PlannedPhase | undefined;
  private clock: { t0: number; firstEpoch: number; firstStep: number; lastStepAt: number; steps: number } | undefined;
  private evalSeconds = 0;

  /** `plan`: the phases the run will go through, so that the estimate covers the whole run. */
  constructor(
    private readonly plan: readonly PlannedPhase[],
    private readonly now: () => number = () => performance.now() / 1000,
  ) {}

  /** Seconds left after this event, or undefined before the pace is known (and for events without one). */
  update(e: RunEvent): number | undefined {
    if (e.type === 'phase') {
      this.current = { phase: e.phase, epochs: e.epochs };
      this.clock = undefined;
      return undefined;
    }
    const cur = this.current;
    if (!cur || (e.type !== 'step' && e.type !== 'epoch')) return undefined;
    const t = this.now();
    if (e.type === 'step') {
      if (!this.clock) {
        this.clock = { t0: t, firstEpoch: e.epoch, firstStep: e.step, lastStepAt: t, steps: e.steps };
        return undefined;
      }
      this.clock.lastStepAt = t;
      this.clock.steps = e.steps;
      return this.estimate(cur, e.epoch, e.step, t, e.epoch - this.clock.firstEpoch);
    }
    if (!this.clock) return undefined;
    // The time between an epoch's last step and its result is the evaluation on the test sets.
    this.evalSeconds = Math.max(0, t - this.clock.lastStepAt);
    return this.estimate(cur, e.epoch, this.clock.steps, t, e.epoch - this.clock.firstEpoch + 1);
  }

  private estimate(cur: PlannedPhase, epoch: number, step: number, t: number, evalsDone: number): number | undefined {
    const c = this.clock;
    if (!c) return undefined;
    const done = (epoch - c.firstEpoch) * c.steps + (step - c.firstStep);
    if (done <= 0) return undefined;
    const perStep = Math.max(0, t - c.t0 - this.evalSeconds * evalsDone) / done;
    const leftSteps = (cur.epochs - epoch) * c.steps + (c.steps - step);
    const leftEvals = cur.epochs - c.firstEpoch + 1 - evalsDone;
    let seconds = leftSteps * perStep + leftEvals * this.evalSeconds;
    const at = this.plan.findIndex((p) => p.phase === cur.phase);
    for (const later of at >= 0 ? this.plan.slice(at + 1) : []) {
      const factor = later.phase === 'nad' && cur.phase !== 'nad' ? NAD_STEP_FACTOR : 1;
      seconds += later.epochs * (c.steps * perStep * factor + this.evalSeconds);
    }
    return Math.round(seconds);
  }
}
