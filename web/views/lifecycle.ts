/** Pause / resume / stop buttons for a job (operators only; viewers get none). */
import { api } from '../api.ts';
import { announce, el } from '../dom.ts';
import type { JobSummary } from '../types.ts';
import { confirmAction, type ViewContext } from './common.ts';

const FINAL = new Set(['completed', 'failed', 'stopped', 'budget_exhausted']);

export function lifecycleButtons(ctx: ViewContext, job: JobSummary, after: () => void): HTMLElement | null {
  if (!ctx.canOperate) return null;
  const finished = FINAL.has(job.status);
  const act = async (action: 'pause' | 'resume' | 'stop') => {
    if (action === 'stop') {
      const { ok } = await confirmAction(`Stop job ${job.id}?`, 'A stopped job cannot be resumed. The round in flight is abandoned (nothing is published).', 'Stop the job');
      if (!ok) return;
    }
    try {
      await api(`/api/v1/jobs/${encodeURIComponent(job.id)}/${action}`, { method: 'POST', body: {} });
      announce(`Job ${job.id}: ${action} done.`);
    } catch (err) {
      ctx.fail(err);
    }
    after();
  };
  const button = (action: 'pause' | 'resume' | 'stop', label: string, enabled: boolean) =>
    el('button', { attrs: { type: 'button', 'data-action': action, disabled: !enabled, 'aria-label': `${label} job ${job.id}` }, on: { click: () => void act(action) } }, label);
  return el(
    'div',
    { class: 'lifecycle', attrs: { role: 'group', 'aria-label': `Lifecycle of ${job.id}` } },
    button('pause', 'Pause', !finished && job.status !== 'paused'),
    button('resume', 'Resume', job.status === 'paused'),
    button('stop', 'Stop', !finished),
  );
}
