// Entry point of a TrainingPool worker thread: registers tsx's loader in this thread (a worker does
// not inherit the loader of a parent that runs under vitest or a bundler), then loads the TypeScript
// worker. Same pattern as bin/cohort.mjs.
import { register } from 'tsx/esm/api';

register();
await import('./pool-worker.ts');
