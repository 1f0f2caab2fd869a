/** A data table whose columns sort on click (aria-sort says which), every cell text. */
import { el, replace, type Child } from './dom.ts';

export interface Column<R> {
  key: string;
  label: string;
  /** The cell: text, or a node (a button, a link) built by us. */
  cell(row: R): Child;
  /** The value sorted by; columns without one do not sort. */
  sort?(row: R): number | string | null;
  numeric?: boolean;
  /** Long text (a trust assumption): a wide cell in small type rather than a tall one. */
  wide?: boolean;
}

export interface TableOptions<R> {
  caption: string;
  /** Show at most this many rows (with a button for the rest). */
  limit?: number;
  rowAttrs?(row: R): Record<string, string>;
  initialSort?: { key: string; dir: 'ascending' | 'descending' };
  testId?: string;
}

export function dataTable<R>(columns: Column<R>[], rows: readonly R[], opts: TableOptions<R>): HTMLElement {
  let sortKey = opts.initialSort?.key;
  let dir: 'ascending' | 'descending' = opts.initialSort?.dir ?? 'ascending';
  let showAll = false;
  const wrap = el('div', { class: 'table-wrap', attrs: { 'data-testid': opts.testId } });

  const render = () => {
    const col = columns.find((c) => c.key === sortKey);
    const sorted = [...rows];
    if (col?.sort) {
      const sign = dir === 'ascending' ? 1 : -1;
      sorted.sort((a, b) => {
        const x = col.sort!(a);
        const y = col.sort!(b);
        if (x === y) return 0;
        if (x === null) return 1;
        if (y === null) return -1;
        return (x < y ? -1 : 1) * sign;
      });
    }
    const shown = opts.limit && !showAll ? sorted.slice(0, opts.limit) : sorted;
    const head = el(
      'tr',
      null,
      ...columns.map((c) => {
        const sortable = Boolean(c.sort);
        const th = el('th', { attrs: { scope: 'col', 'aria-sort': c.key === sortKey ? dir : sortable ? 'none' : undefined }, class: c.numeric ? 'num' : '' });
        if (!sortable) th.append(c.label);
        else
          th.append(
            el(
              'button',
              {
                class: 'sort',
                attrs: { type: 'button', 'data-sort': c.key },
                on: {
                  click: () => {
                    dir = sortKey === c.key && dir === 'ascending' ? 'descending' : 'ascending';
                    sortKey = c.key;
                    render();
                  },
                },
              },
              c.label,
              c.key === sortKey ? (dir === 'ascending' ? ' ▲' : ' ▼') : '',
            ),
          );
        return th;
      }),
    );
    const body = el(
      'tbody',
      null,
      ...shown.map((r) => el('tr', { attrs: opts.rowAttrs?.(r) ?? {} }, ...columns.map((c) => el('td', { class: c.numeric ? 'num' : c.wide ? 'wide' : '' }, c.cell(r))))),
    );
    const table = el('table', null, el('caption', null, opts.caption), el('thead', null, head), body);
    const more =
      opts.limit && rows.length > opts.limit
        ? el(
            'button',
            { attrs: { type: 'button' }, class: 'link', on: { click: () => ((showAll = !showAll), render()) } },
            showAll ? `Show the first ${opts.limit}` : `Show all ${rows.length} rows`,
          )
        : null;
    replace(wrap, table, more, rows.length === 0 ? el('p', { class: 'empty' }, 'None yet.') : null);
  };
  render();
  return wrap;
}
