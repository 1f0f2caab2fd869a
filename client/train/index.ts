export * from './backend.ts';
export * from './trainer.ts';
