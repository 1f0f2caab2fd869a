export * from './errors.ts';
export * from './limits.ts';
export * from './messages.ts';
export * from './framing.ts';
export * from './transport.ts';
