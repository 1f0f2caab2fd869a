export * from './spec.ts';
export { buildModel, ModelSpecError } from './build.ts';
export { buildZooModel } from './zoo.ts';
export * from './weights.ts';
export { weightsChecksum, weightsChecksumPortable } from './checksum.ts';
export * from './quantize.ts';
export * from './transfer.ts';
export * from './prune.ts';
