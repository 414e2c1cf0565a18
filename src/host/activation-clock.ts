// Imported first by extension.ts: the time its bundle started loading, to measure activation.
export const LOADED_AT = performance.now();
