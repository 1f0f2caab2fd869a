export * from './socketio.ts';
export * from './memory.ts';
