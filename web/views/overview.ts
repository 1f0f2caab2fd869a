/** Jobs overview: status, round k of N, clients, ε spent against the budget, last accuracy, production version. */
import { api } from '../api.ts';
import { el, replace } from '../dom.ts';
import { num, pct } from '../format.ts';
import { dataTable } from '../table.ts';
import type { JobSummary, Rounds } from '../types.ts';
import { refresher, statusBadge, type View, type ViewContext } from './common.ts';
import { lifecycleButtons } from './lifecycle.ts';

/** ε against the budget's audience: a meter and the numbers. */
export function epsilonGauge(job: JobSummary): HTMLElement {
  const e = job.epsilon;
  if (!e) return el('span', null, 'no DP');
  const spent = (e.against === 'coordinator' ? e.coordinator : e.published) ?? 0;
  const label = `ε ${num(spent)}${e.budget !== null ? ` of ${num(e.budget)}` : ''} (against ${e.against === 'coordinator' ? 'the coordinator' : 'model consumers'})`;
  return el(
    'span',
    { class: 'gauge' },
    e.budget !== null ? el('meter', { attrs: { min: 0, max: e.budget, value: Math.min(spent, e.budget), low: e.budget * 0.7, high: e.budget * 0.9, optimum: 0, 'aria-label': label } }) : null,
    el('span', null, label),
  );
}

export function overviewView(ctx: ViewContext): View {
  const body = el('div', null, el('p', null, 'Loading jobs…'));
  const node = el('section', { attrs: { 'aria-labelledby': 'jobs-title' } }, el('h1', { attrs: { id: 'jobs-title' } }, 'Jobs'), body);
  const refresh = refresher(async () => {
    try {
      const jobs = await api<JobSummary[]>('/api/v1/jobs');
      const rounds = await Promise.all(jobs.map((j) => api<Rounds>(`/api/v1/jobs/${encodeURIComponent(j.id)}/rounds`).catch(() => ({ rounds: [], attempts: [] }))));
      const lastAccuracy = new Map(
        jobs.map((j, i) => {
          const last = [...rounds[i].rounds].reverse().find((r) => r.evaluation || r.trainAccuracy !== null);
          return [j.id, last ? (last.evaluation?.accuracy ?? last.trainAccuracy) : null];
        }),
      );
      replace(
        body,
        dataTable<JobSummary>(
          [
            { key: 'id', label: 'Job', cell: (j) => el('a', { attrs: { href: `#/jobs/${encodeURIComponent(j.id)}` } }, j.id), sort: (j) => j.id },
            { key: 'status', label: 'Status', cell: (j) => statusBadge(j.status), sort: (j) => j.status },
            { key: 'round', label: 'Round', cell: (j) => `${j.round} of ${j.rounds}`, sort: (j) => j.round, numeric: true },
            { key: 'clients', label: 'Clients connected', cell: (j) => j.connected, sort: (j) => j.connected, numeric: true },
            { key: 'epsilon', label: 'ε spent / budget', cell: epsilonGauge, sort: (j) => j.epsilon?.published ?? j.epsilon?.coordinator ?? null },
            { key: 'accuracy', label: 'Last accuracy', cell: (j) => pct(lastAccuracy.get(j.id)), sort: (j) => lastAccuracy.get(j.id) ?? null, numeric: true },
            { key: 'production', label: 'Production', cell: (j) => (j.production === null ? '—' : `version ${j.production}`), sort: (j) => j.production },
            ...(ctx.canOperate ? [{ key: 'actions', label: 'Actions', cell: (j: JobSummary) => lifecycleButtons(ctx, j, refresh) }] : []),
          ],
          jobs,
          { caption: `${jobs.length} job${jobs.length === 1 ? '' : 's'}`, testId: 'jobs-table', rowAttrs: (j) => ({ 'data-job': j.id }) },
        ),
      );
    } catch (err) {
      ctx.fail(err);
    }
  });
  refresh();
  return { node, onNotice: () => refresh() };
}
