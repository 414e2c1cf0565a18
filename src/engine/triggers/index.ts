// Backdoor triggers and poisoning as the paper's data_loader.py defines them (DatasetBD and its triggers),
// plus blend, SIG and WaNet's warp. Pure image functions work on single HWC images, e.g. for attention-map previews.
export {
  TRIGGER_NAMES,
  TARGET_TYPES,
  PAPER_DEFAULTS,
  parseTriggerName,
  parseTargetType,
  resolveTriggerSpec,
  type TriggerName,
  type TargetType,
  type TriggerSpec,
  type ResolvedTriggerSpec,
} from './spec';
export { createTrigger, applyTrigger, applyTriggerToImage, warpTriggerGrid, type Trigger, type ApplyOptions } from './trigger';
export {
  poisonTrainingSet,
  backdoorTestSet,
  attackLabel,
  type AttackOptions,
  type PoisonOptions,
  type PoisonedDataset,
  type BackdoorTestOptions,
  type BackdoorTestSet,
} from './poison';
export {
  stampGrid,
  stampSquare,
  stampFourCorner,
  stampLcCheckerboard,
  blendMask,
  blendRandomPixels,
  addTrojanMask,
  stampSinusoid,
  addSinusoid,
  sinusoidRow,
  warpNoise,
  warpLinspace,
  warpFlow,
  warpGrid,
  noisyWarpGrid,
  type ImageShape,
} from './patterns';
export {
  applyWarpPlan,
  applyWarpPlanMany,
  warpImage,
  warpImageFloat,
  warpKernel,
  warpPlan,
  warpScratchLength,
  type WarpPlan,
} from './warp-plan';
export {
  REFLECTION_MODELS,
  GHOST_RATE,
  blendReflection,
  drawReflection,
  stampReflection,
  reflectionImage,
  reflectionVignette,
  resizeLinear,
  gaussianBlur,
  gaussianKernel,
  type ReflectionModel,
  type ReflectionDraws,
  type FloatImage,
} from './reflection';
export {
  openReflectionSource,
  datasetPool,
  reflectionCandidates,
  loadReflectionCandidates,
  type ReflectionPool,
  type CandidateOptions,
} from './reflection-source';
export { builtInSignalMask, builtInTrojanMask, arrangeMask } from './masks';
