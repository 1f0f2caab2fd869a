/**
 * A CSV file a person picked in the browser, read into the client's data: one example per line,
 * numeric cells, the label in the column named `label` (with a header) or else the last column.
 * Errors name the 1-based line. (client/node/csv.ts streams files from disk; this reads text.)
 */
import { DataError } from '../data/dataset.ts';
import type { BrowserData } from './messages.ts';

function cells(line: string): string[] {
  return line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
}

const isNumber = (cell: string): boolean => cell !== '' && Number.isFinite(Number(cell));

export function parseCsv(text: string, shape?: number[]): BrowserData {
  const lines = text.split(/\r?\n/);
  let first = 0;
  while (first < lines.length && lines[first].trim() === '') first++;
  if (first === lines.length) throw new DataError('the CSV file is empty');
  const head = cells(lines[first]);
  const hasHeader = head.some((c) => c !== '' && !isNumber(c));
  const labelAt = hasHeader && head.includes('label') ? head.indexOf('label') : head.length - 1;
  const width = head.length - 1;
  if (width < 1) throw new DataError('the CSV needs at least one feature column and a label column');
  const x: number[] = [];
  const y: number[] = [];
  for (let i = hasHeader ? first + 1 : first; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const row = cells(lines[i]);
    if (row.length !== head.length) throw new DataError(`line ${i + 1}: ${row.length} cells, expected ${head.length}`, { line: i + 1 });
    row.forEach((cell, c) => {
      if (!isNumber(cell)) throw new DataError(`line ${i + 1}, column ${c + 1}: ${JSON.stringify(cell.slice(0, 40))} is not a number`, { line: i + 1, column: c + 1 });
      if (c === labelAt) y.push(Number(cell));
      else x.push(Number(cell));
    });
  }
  if (y.length === 0) throw new DataError('the CSV has no examples');
  return { x: Float32Array.from(x), y: Int32Array.from(y), shape: shape ?? [width] };
}
