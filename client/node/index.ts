/**
 * The Node-only part of the client SDK: dataset file loaders (CSV, JSON lines), the client config file,
 * and the worker-thread training pool. Everything else in client/ is isomorphic (Node and browser).
 */
export { loadCsv, splitCsvLine, type CsvOptions } from './csv.ts';
export { loadJsonLines, type JsonLinesOptions } from './jsonl.ts';
export { loadDataset, type LoadOptions } from './load.ts';
export { ClientConfigSchema, loadClientConfig, type ClientConfig } from './config.ts';
export * from './pool.ts';
