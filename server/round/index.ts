export * from './config.ts';
export * from './engine.ts';
