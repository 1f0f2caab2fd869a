/**
 * The job page's charts, all drawn by uPlot (no chart code of ours beyond its options): cumulative ε
 * per round against the budget with the next round's projection, participation per round as stacked
 * bars, and training / evaluation quality. Each chart's numbers are also on its container as data
 * attributes (what the end-to-end test reads) and in a text summary for screen readers.
 */
import uPlot from 'uplot';
import { el } from './dom.ts';
import { num } from './format.ts';
import type { DriftAlertRow, LedgerRow, RoundParticipation, RoundRow } from './types.ts';

const HEIGHT = 240;
/** Rounds are whole numbers: the x axis ticks only at these steps. */
const ROUND_AXIS: uPlot.Axis = { label: 'round', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000] };
const COLORS = { drift: '#c2185b', epsilon: '#1f5fae', budget: '#b3261e', projected: '#7a4fb3', survived: '#2e7d32', dropped: '#e08a00', sampled: '#9e9e9e', rejected: '#6d4c41', loss: '#b3261e', acc: '#1f5fae' };

export interface Chart {
  node: HTMLElement;
  destroy(): void;
}

function mount(label: string, testId: string, opts: Omit<uPlot.Options, 'width' | 'height'>, data: uPlot.AlignedData, summary: string): { chart: Chart; plot: uPlot; node: HTMLElement } {
  const canvas = el('div', { class: 'chart-canvas', attrs: { role: 'img', 'aria-label': `${label}: ${summary}` } });
  const node = el('figure', { class: 'chart', attrs: { 'data-testid': testId } }, canvas, el('figcaption', { class: 'sr-only' }, summary));
  const plot = new uPlot({ ...opts, width: 640, height: HEIGHT }, data, canvas);
  const fit = () => {
    const w = Math.max(280, Math.floor(canvas.clientWidth || node.clientWidth || 640));
    if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: HEIGHT });
  };
  const observer = new ResizeObserver(fit);
  observer.observe(node);
  return { chart: { node, destroy: () => (observer.disconnect(), plot.destroy()) }, plot, node };
}

/**
 * Cumulative ε after each committed round (the ledger's `epsilon`, against the budget's audience),
 * the budget as a horizontal rule, and the projected ε after the next round as a dashed step.
 * `onHover` gets the ledger row under the cursor (or null).
 */
export function epsilonChart(rows: LedgerRow[], budget: number | null, projected: number | null, onHover: (row: LedgerRow | null) => void): Chart {
  const committed = rows.filter((r) => r.status === 'committed').sort((a, b) => a.round - b.round);
  const xs = committed.map((r) => r.round);
  const eps: (number | null)[] = committed.map((r) => r.epsilon);
  const proj: (number | null)[] = committed.map(() => null);
  if (projected !== null) {
    const last = xs.length ? xs[xs.length - 1] : 0;
    if (proj.length) proj[proj.length - 1] = eps[eps.length - 1];
    else {
      xs.push(0);
      eps.push(0);
      proj.push(0);
    }
    xs.push(last + 1);
    eps.push(null);
    proj.push(projected);
  }
  const rule = xs.map(() => budget);
  const top = Math.max(budget ?? 0, projected ?? 0, ...committed.map((r) => r.epsilon), 1e-6) * 1.1;
  const summary = committed.length
    ? `${committed.length} rounds; ε after round ${committed[committed.length - 1].round} is ${num(committed[committed.length - 1].epsilon)}${budget !== null ? ` of a budget of ${num(budget)}` : ''}${projected !== null ? `; projected after the next round ${num(projected)}` : ''}`
    : 'no committed round yet';
  const byRound = new Map(committed.map((r) => [r.round, r]));
  const { chart, node } = mount(
    'Cumulative ε per round',
    'epsilon-chart',
    {
      scales: { x: { time: false }, y: { range: [0, top] } },
      axes: [ROUND_AXIS, { label: 'ε (cumulative)' }],
      series: [
        { label: 'round' },
        { label: 'ε spent', stroke: COLORS.epsilon, width: 2, points: { show: true, size: 6 }, value: (_u, v) => num(v) },
        { label: 'budget', stroke: COLORS.budget, width: 1.5, dash: [8, 4], points: { show: false }, value: (_u, v) => num(v) },
        { label: 'projected next round', stroke: COLORS.projected, width: 1.5, dash: [3, 3], points: { show: true, size: 7 }, value: (_u, v) => num(v) },
      ],
      cursor: { drag: { x: false, y: false } },
      hooks: {
        setCursor: [
          (u) => {
            const idx = u.cursor.idx;
            onHover(idx === null || idx === undefined ? null : (byRound.get(u.data[0][idx]) ?? null));
          },
        ],
      },
    },
    [xs, eps, rule, proj],
    summary,
  );
  node.dataset.points = JSON.stringify(committed.map((r) => [r.round, r.epsilon]));
  node.dataset.budget = budget === null ? '' : String(budget);
  node.dataset.projected = projected === null ? '' : String(projected);
  return chart;
}

/** Where a chart of committed rounds would be, before the first one. */
function placeholder(testId: string, text: string): Chart {
  const node = el('figure', { class: 'chart chart-empty', attrs: { 'data-testid': testId, 'data-rounds': '0' } }, el('p', { class: 'empty' }, text));
  return { node, destroy: () => {} };
}

/**
 * Each round's sampled clients by outcome (its last attempt), as stacked bars: survived at the bottom,
 * then dropped, refused, rejected; the bar's height is the number sampled.
 */
export function participationChart(rounds: RoundParticipation[]): Chart {
  if (rounds.length === 0) return placeholder('participation-chart', 'No round has run yet.');
  const xs = rounds.map((r) => r.round);
  const parts = [rounds.map((r) => r.completed), rounds.map((r) => r.dropped), rounds.map((r) => r.refused), rounds.map((r) => r.rejected)];
  // Cumulative heights; uPlot draws series in order, so the tallest (all sampled) goes first and each
  // shorter stack is drawn over it.
  const stacked = parts.map((_, k) => rounds.map((_r, i) => parts.slice(0, k + 1).reduce((sum, p) => sum + p[i], 0)));
  const bars = uPlot.paths.bars!({ size: [0.7, 40], gap: 1 });
  const value = (k: number) => (_u: uPlot, _v: number | null, _s: number, idx: number | null) => (idx === null ? '—' : String(parts[k][idx]));
  const last = rounds[rounds.length - 1];
  const summary = `round ${last.round}: ${last.completed + last.dropped + last.refused + last.rejected} sampled, ${last.completed} survived, ${last.dropped} dropped, ${last.refused} refused, ${last.rejected} rejected`;
  const series = (k: number, label: string, color: string): uPlot.Series => ({ label, fill: color, stroke: color, paths: bars, points: { show: false }, value: value(k) });
  const { chart, node } = mount(
    'Participation per round',
    'participation-chart',
    {
      scales: { x: { time: false, range: (_u, min, max) => [min - 0.5, max + 0.5] }, y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] } },
      axes: [ROUND_AXIS, { label: 'clients sampled' }],
      series: [
        { label: 'round' },
        series(3, 'rejected', COLORS.rejected),
        series(2, 'refused', COLORS.sampled),
        series(1, 'dropped', COLORS.dropped),
        series(0, 'survived', COLORS.survived),
      ],
    },
    [xs, stacked[3], stacked[2], stacked[1], stacked[0]],
    summary,
  );
  node.dataset.rounds = String(rounds.length);
  node.dataset.counts = JSON.stringify(rounds);
  return chart;
}

/** A uPlot plugin drawing a dashed vertical rule, labelled "drift", at each alert's round. */
function driftMarkers(alerts: DriftAlertRow[]): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        ctx.save();
        ctx.strokeStyle = COLORS.drift;
        ctx.fillStyle = COLORS.drift;
        ctx.lineWidth = 2 * devicePixelRatio;
        ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
        ctx.font = `${11 * devicePixelRatio}px sans-serif`;
        for (const a of alerts) {
          const x = Math.round(u.valToPos(a.round, 'x', true));
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.fillText('drift', x + 3 * devicePixelRatio, top + 12 * devicePixelRatio);
        }
        ctx.restore();
      },
    },
  };
}

/**
 * Train loss and accuracy (clients' reports) and federated evaluation loss and accuracy per round, with
 * a marker at every round whose evaluation raised a drift alert.
 */
export function qualityChart(rounds: RoundRow[], driftAlerts: DriftAlertRow[] = []): Chart {
  if (rounds.length === 0) return placeholder('quality-chart', 'No committed round yet.');
  const xs = rounds.map((r) => r.round);
  const last = [...rounds].reverse().find((r) => r.evaluation || r.trainAccuracy !== null);
  const summary =
    (last
      ? `round ${last.round}: train loss ${num(last.trainLoss)}, train accuracy ${num(last.trainAccuracy)}${last.evaluation ? `, evaluation loss ${num(last.evaluation.loss)}, accuracy ${num(last.evaluation.accuracy)}` : ''}`
      : 'no metrics yet') + driftAlerts.map((a) => `; drift alert at round ${a.round}: ${a.reason}`).join('');
  const { chart, node } = mount(
    'Model quality per round',
    'quality-chart',
    {
      plugins: driftAlerts.length ? [driftMarkers(driftAlerts)] : [],
      scales: { x: { time: false }, loss: { range: (_u, _min, max) => [0, Math.max(max ?? 1, 1e-6) * 1.1] }, acc: { range: [0, 1] } },
      axes: [ROUND_AXIS, { scale: 'loss', label: 'loss' }, { scale: 'acc', side: 1, label: 'accuracy', grid: { show: false } }],
      series: [
        { label: 'round' },
        { label: 'train loss', scale: 'loss', stroke: COLORS.loss, width: 1.5, value: (_u, v) => num(v) },
        { label: 'train accuracy', scale: 'acc', stroke: COLORS.acc, width: 1.5, value: (_u, v) => num(v) },
        { label: 'eval loss', scale: 'loss', stroke: COLORS.loss, dash: [6, 3], width: 2, spanGaps: true, points: { show: true, size: 5 }, value: (_u, v) => num(v) },
        { label: 'eval accuracy', scale: 'acc', stroke: COLORS.acc, dash: [6, 3], width: 2, spanGaps: true, points: { show: true, size: 5 }, value: (_u, v) => num(v) },
      ],
    },
    [xs, rounds.map((r) => r.trainLoss), rounds.map((r) => r.trainAccuracy), rounds.map((r) => r.evaluation?.loss ?? null), rounds.map((r) => r.evaluation?.accuracy ?? null)],
    summary,
  );
  node.dataset.driftRounds = JSON.stringify(driftAlerts.map((a) => a.round));
  return chart;
}
