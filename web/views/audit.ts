/** The audit log (GET /api/v1/audit) with its filters: actor, action, job, since; newest first. */
import { api } from '../api.ts';
import { el, replace } from '../dom.ts';
import { time } from '../format.ts';
import { dataTable } from '../table.ts';
import type { AuditRow } from '../types.ts';
import { refresher, type View, type ViewContext } from './common.ts';

export function auditView(ctx: ViewContext): View {
  const field = (name: string, label: string, type = 'text') => {
    const input = el('input', { attrs: { id: `audit-${name}`, name, type, autocomplete: 'off' } });
    return { input, node: el('div', { class: 'field' }, el('label', { attrs: { for: `audit-${name}` } }, label), input) };
  };
  const actor = field('actor', 'Actor');
  const action = field('action', 'Action');
  const job = field('job', 'Job');
  const since = field('since', 'Since (UTC)', 'datetime-local');
  const limit = field('limit', 'Rows', 'number');
  limit.input.value = '500';
  const results = el('div', null, el('p', null, 'Loading…'));
  const refresh = refresher(async () => {
    const q = new URLSearchParams();
    for (const [k, f] of [['actor', actor], ['action', action], ['job', job]] as const) if (f.input.value.trim()) q.set(k, f.input.value.trim());
    if (since.input.value) q.set('since', String(Date.parse(`${since.input.value}Z`)));
    q.set('limit', String(Math.min(10_000, Math.max(1, Number(limit.input.value) || 500))));
    try {
      const rows = await api<AuditRow[]>(`/api/v1/audit?${q.toString()}`);
      replace(
        results,
        dataTable<AuditRow>(
          [
            { key: 'seq', label: '#', cell: (r) => String(r.seq), sort: (r) => r.seq, numeric: true },
            { key: 'at', label: 'Time', cell: (r) => time(r.at), sort: (r) => r.at },
            { key: 'actor', label: 'Actor', cell: (r) => r.actor, sort: (r) => r.actor },
            { key: 'action', label: 'Action', cell: (r) => r.action, sort: (r) => r.action },
            { key: 'target', label: 'Target', cell: (r) => r.target ?? '—', sort: (r) => r.target ?? null },
            { key: 'outcome', label: 'Outcome', cell: (r) => el('span', { class: `badge badge-${r.outcome}` }, r.outcome), sort: (r) => r.outcome },
            { key: 'details', label: 'Details', cell: (r) => el('code', { class: 'details' }, r.details ? JSON.stringify(r.details) : '') },
          ],
          rows,
          { caption: `${rows.length} audit rows, newest first`, testId: 'audit-table', initialSort: { key: 'seq', dir: 'descending' }, limit: 200, rowAttrs: (r) => ({ 'data-seq': String(r.seq), 'data-action': r.action }) },
        ),
      );
    } catch (err) {
      ctx.fail(err);
    }
  });
  const form = el(
    'form',
    { class: 'filters', attrs: { 'aria-label': 'Audit filters' }, on: { submit: (ev) => (ev.preventDefault(), refresh()) } },
    actor.node,
    action.node,
    job.node,
    since.node,
    limit.node,
    el('button', { class: 'primary', attrs: { type: 'submit' } }, 'Filter'),
  );
  refresh();
  const node = el('section', { attrs: { 'aria-labelledby': 'audit-title' } }, el('h1', { attrs: { id: 'audit-title' } }, 'Audit log'), form, results);
  return { node, onNotice: (n) => (n === null || n.kind === 'lifecycle' || n.kind === 'version' || n.kind === 'paused' || n.kind === 'finished' ? refresh() : undefined) };
}
