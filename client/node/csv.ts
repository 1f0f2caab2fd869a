/**
 * CSV loader: one example per line, numeric cells, one of them the class label. Streams the file line
 * by line into typed arrays. Errors name the file, the 1-based line and the column.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { ConfigError } from '../../shared/errors.ts';
import { DatasetBuilder, labelProblem } from '../data/builder.ts';
import { DataError, type Dataset, type DatasetShapeOptions } from '../data/dataset.ts';

export interface CsvOptions extends DatasetShapeOptions {
  /** Header name, or 0-based index (negative counts from the end). Default 'label' if present, else the last column. */
  labelColumn?: string | number;
  /** Whether the first line is a header; default: auto-detected (a non-empty, non-numeric cell in line 1). */
  header?: boolean;
}

/** Splits one CSV line; supports double-quoted cells with "" escapes. */
export function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',').map((c) => c.trim());
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      cells.push(cell.trim());
      cell = '';
    } else cell += ch;
  }
  cells.push(cell.trim());
  return cells;
}

function isNumeric(cell: string): boolean {
  return cell !== '' && Number.isFinite(Number(cell));
}

function resolveLabelIndex(label: string | number | undefined, names: string[] | undefined, columns: number): number {
  if (typeof label === 'number') {
    const index = label < 0 ? columns + label : label;
    if (!Number.isInteger(label) || index < 0 || index >= columns) {
      throw new ConfigError(`labelColumn ${label} is outside the ${columns} columns`);
    }
    return index;
  }
  if (label !== undefined) {
    if (!names) throw new ConfigError(`labelColumn '${label}' given by name, but the CSV has no header`);
    const index = names.indexOf(label);
    if (index < 0) throw new ConfigError(`labelColumn '${label}' is not in the header (${names.join(', ')})`);
    return index;
  }
  const named = names?.indexOf('label') ?? -1;
  return named >= 0 ? named : columns - 1;
}

interface Layout {
  columns: number;
  labelIndex: number;
}

function parseRow(cells: string[], layout: Layout, builder: DatasetBuilder, where: string, numClasses?: number): void {
  if (cells.length !== layout.columns) {
    throw new DataError(`${where}: ${cells.length} cells, expected ${layout.columns}`);
  }
  const y = cells[layout.labelIndex] === '' ? NaN : Number(cells[layout.labelIndex]);
  const problem = labelProblem(y, numClasses);
  if (problem) throw new DataError(`${where}: column ${layout.labelIndex + 1}: ${problem} ('${cells[layout.labelIndex]}')`);
  builder.push(y, (out) => {
    let j = 0;
    for (let c = 0; c < cells.length; c++) {
      if (c === layout.labelIndex) continue;
      if (!isNumeric(cells[c])) throw new DataError(`${where}: column ${c + 1}: '${cells[c]}' is not a finite number`);
      out[j++] = Number(cells[c]);
    }
  });
}

export async function loadCsv(path: string, opts: CsvOptions = {}): Promise<Dataset> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let layout: Layout | undefined;
  let builder: DatasetBuilder | undefined;
  let lineNo = 0;
  try {
    for await (const raw of lines) {
      lineNo++;
      if (raw.trim() === '') continue;
      const cells = splitCsvLine(raw.replace(/^\uFEFF/, ''));
      const where = `${path}:${lineNo}`;
      if (!layout) {
        const header = opts.header ?? cells.some((c) => c !== '' && !isNumeric(c));
        layout = { columns: cells.length, labelIndex: resolveLabelIndex(opts.labelColumn, header ? cells : undefined, cells.length) };
        if (layout.columns < 2) throw new DataError(`${where}: need at least one feature column and a label column`);
        builder = new DatasetBuilder(layout.columns - 1);
        if (header) continue;
      }
      try {
        parseRow(cells, layout, builder!, where, opts.numClasses);
      } catch (err) {
        if (err instanceof DataError) throw new DataError(err.message, { path, line: lineNo });
        throw err;
      }
    }
  } finally {
    lines.close();
  }
  if (!builder || builder.size === 0) throw new DataError(`${path}: no data rows`, { path });
  return builder.finish(opts);
}
