export * from './stats.ts';
export * from './schema.ts';
export * from './secagg-words.ts';
export * from './fairness.ts';
export * from './drift.ts';
export * from './accumulator.ts';
export * from './criteria.ts';
export * from './report.ts';
