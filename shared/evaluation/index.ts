export * from './stats.ts';
export * from './schema.ts';
export * from './secagg-words.ts';
export * from './fairness.ts';
export * from './drift.ts';
