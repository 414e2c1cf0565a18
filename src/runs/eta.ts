// Estimated time left in a run, from the pace of its training steps and evaluations so far. Later
// phases of the same run (NAD after the teacher's finetuning) are estimated at the current pace.
import type { JobConfig } from './config';
import type { Phase } from './jobs';
import type { TrainProgress } from '../engine/train';

/** A NAD step also runs the teacher forward: it costs about this much more than a finetuning step. */
const NAD_STEP_FACTOR = 1.3;

export class EtaClock {
  private plan_: Array<{ phase: Phase; epochs: number }> = [];
  private current: { phase: Phase; epochs: number } | undefined;
  private clock: { t0: number; firstEpoch: number; firstStep: number; lastStepAt: number; steps: number } | undefined;
  private evalSeconds = 0;

  constructor(private readonly now: () => number = () => performance.now() / 1000) {}

  /** The phases a job will go through, so that the estimate covers the whole run. */
  plan(config: JobConfig): void {
    switch (config.kind) {
      case 'train':
        this.plan_ = [{ phase: 'train', epochs: config.training.epochs }];
        return;
      case 'finetune':
        this.plan_ = [{ phase: 'teacher', epochs: config.training.epochs }];
        return;
      case 'erase':
        this.plan_ = [...(config.teacher ? [] : [{ phase: 'teacher' as const, epochs: config.teacherTraining.epochs }]), { phase: 'nad', epochs: config.training.epochs }];
        return;
      case 'eval':
      case 'attention':
      case 'imageAttention':
        this.plan_ = [];
        return;
      default: {
        const _: never = config;
        return _;
      }
    }
  }

  phase(phase: Phase, epochs: number): void {
    this.current = { phase, epochs };
    this.clock = undefined;
  }

  /** Seconds left after this progress event, or undefined before the pace is known. */
  update(p: TrainProgress): number | undefined {
    const cur = this.current;
    if (!cur || p.type === 'baseline') return undefined;
    const t = this.now();
    if (p.type === 'step') {
      if (!this.clock) {
        this.clock = { t0: t, firstEpoch: p.epoch, firstStep: p.step, lastStepAt: t, steps: p.steps };
        return undefined;
      }
      this.clock.lastStepAt = t;
      this.clock.steps = p.steps;
      return this.estimate(cur, p.epoch, p.step, t, p.epoch - this.clock.firstEpoch);
    }
    if (!this.clock) return undefined;
    // The time between an epoch's last step and its result is the evaluation on the test sets.
    this.evalSeconds = Math.max(0, t - this.clock.lastStepAt);
    return this.estimate(cur, p.epoch, this.clock.steps, t, p.epoch - this.clock.firstEpoch + 1);
  }

  private estimate(cur: { phase: Phase; epochs: number }, epoch: number, step: number, t: number, evalsDone: number): number | undefined {
    const c = this.clock;
    if (!c) return undefined;
    const done = (epoch - c.firstEpoch) * c.steps + (step - c.firstStep);
    if (done <= 0) return undefined;
    const perStep = Math.max(0, t - c.t0 - this.evalSeconds * evalsDone) / done;
    const leftSteps = (cur.epochs - epoch) * c.steps + (c.steps - step);
    const leftEvals = cur.epochs - c.firstEpoch + 1 - evalsDone;
    let seconds = leftSteps * perStep + leftEvals * this.evalSeconds;
    const at = this.plan_.findIndex((p) => p.phase === cur.phase);
    for (const later of at >= 0 ? this.plan_.slice(at + 1) : []) {
      const factor = later.phase === 'nad' && cur.phase !== 'nad' ? NAD_STEP_FACTOR : 1;
      seconds += later.epochs * (c.steps * perStep * factor + this.evalSeconds);
    }
    return Math.round(seconds);
  }
}
