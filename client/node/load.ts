/** Loading a dataset file (Node only): the loader is chosen by extension. */
import { extname } from 'node:path';
import { ConfigError } from '../../shared/errors.ts';
import { loadCsv, type CsvOptions } from './csv.ts';
import { loadJsonLines } from './jsonl.ts';
import type { Dataset } from '../data/dataset.ts';

/** Options for any loader; CSV-only fields are ignored for JSON lines. */
export type LoadOptions = CsvOptions;

const LOADERS: Record<string, (path: string, opts: LoadOptions) => Promise<Dataset>> = {
  '.csv': loadCsv,
  '.jsonl': loadJsonLines,
  '.ndjson': loadJsonLines,
};

/** Loads a dataset file, choosing the loader by extension (.csv, .jsonl, .ndjson). */
export function loadDataset(path: string, opts: LoadOptions = {}): Promise<Dataset> {
  const ext = extname(path).toLowerCase();
  const loader = LOADERS[ext];
  if (!loader) {
    return Promise.reject(
      new ConfigError(`cannot load '${path}': unknown extension '${ext}' (supported: ${Object.keys(LOADERS).join(', ')})`),
    );
  }
  return loader(path, opts);
}
