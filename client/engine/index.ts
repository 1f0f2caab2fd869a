export * from './engine.ts';
export * from './privacy-floor.ts';
