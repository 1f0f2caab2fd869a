/**
 * One job: ε per round against the budget (hover a round for its ledger row), participation, quality,
 * the ledger (sortable, CSV), versions (promote / rollback for operators, downloads, model card) and
 * clients. Refetched whenever a live notice names the job.
 */
import { api, apiText, download, saveBlob } from '../api.ts';
import { epsilonChart, participationChart, qualityChart, type Chart } from '../charts.ts';
import { announce, el, replace, type Child } from '../dom.ts';
import { ago, csvField, num, time } from '../format.ts';
import { dataTable, type Column } from '../table.ts';
import type { JobClientRow, JobSummary, Ledger, LedgerRow, RoundParticipation, Rounds, Version } from '../types.ts';
import { confirmAction, errorText, refresher, statusBadge, type View, type ViewContext } from './common.ts';
import { lifecycleButtons } from './lifecycle.ts';
import { epsilonGauge } from './overview.ts';

const LEDGER_COLUMNS: { key: keyof LedgerRow; label: string; numeric?: boolean; wide?: boolean }[] = [
  { key: 'seq', label: 'seq', numeric: true },
  { key: 'round', label: 'round', numeric: true },
  { key: 'status', label: 'status' },
  { key: 'attempt', label: 'attempt', numeric: true },
  { key: 'mode', label: 'mode' },
  { key: 'mechanism', label: 'mechanism' },
  { key: 'sampling', label: 'sampling' },
  { key: 'samplingRate', label: 'q', numeric: true },
  { key: 'population', label: 'population', numeric: true },
  { key: 'cohortSize', label: 'cohort', numeric: true },
  { key: 'survivors', label: 'survivors', numeric: true },
  { key: 'noiseMultiplier', label: 'z', numeric: true },
  { key: 'clipNorm', label: 'C', numeric: true },
  { key: 'shortDrawProbability', label: 'short draw p', numeric: true },
  { key: 'audience', label: 'ε against' },
  { key: 'epsilon', label: 'ε', numeric: true },
  { key: 'epsilonPublished', label: 'ε consumers', numeric: true },
  { key: 'epsilonCoordinator', label: 'ε coordinator', numeric: true },
  { key: 'delta', label: 'δ', numeric: true },
  { key: 'rdpOrder', label: 'RDP order', numeric: true },
  { key: 'recordedAt', label: 'recorded' },
  { key: 'trust', label: 'trust assumption', wide: true },
];

function ledgerCell(row: LedgerRow, key: keyof LedgerRow): Child {
  const v = row[key];
  if (key === 'recordedAt') return time(v as number);
  if (typeof v === 'number') return num(v, 4);
  return v === null || v === undefined ? '—' : String(v);
}

export function ledgerCsv(rows: LedgerRow[]): string {
  const lines = [LEDGER_COLUMNS.map((c) => csvField(c.key)).join(',')];
  for (const r of rows) lines.push(LEDGER_COLUMNS.map((c) => csvField(r[c.key])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** The ledger row under the chart's cursor (the last committed one when the cursor is away). */
function ledgerReadout(row: LedgerRow | null): HTMLElement {
  if (!row) return el('p', { class: 'readout', attrs: { 'data-testid': 'ledger-readout' } }, 'Hover a round to see its ledger row.');
  const item = (term: string, value: Child) => [el('dt', null, term), el('dd', null, value)];
  return el(
    'dl',
    { class: 'readout', attrs: { 'data-testid': 'ledger-readout', 'data-round': row.round } },
    ...item('round', String(row.round)),
    ...item('ε after it', num(row.epsilon, 4)),
    ...item('q', num(row.samplingRate, 4)),
    ...item('z', num(row.noiseMultiplier)),
    ...item('C', num(row.clipNorm)),
    ...item('cohort', String(row.cohortSize)),
    ...item('survivors', String(row.survivors)),
    ...item('mechanism', `${row.mechanism} (${row.mode}, ${row.sampling})`),
    ...item('trust', row.trust),
  );
}

/** The routes the job page reads, in the order it asks for them. */
export function jobPaths(id: string): string[] {
  const path = `/api/v1/jobs/${encodeURIComponent(id)}`;
  return [path, `${path}/ledger`, `${path}/rounds`, `${path}/participation`, `${path}/versions`, `${path}/clients`];
}

export function jobView(ctx: ViewContext, id: string): View {
  const path = `/api/v1/jobs/${encodeURIComponent(id)}`;
  const head = el('div', { class: 'job-head' }, el('p', null, 'Loading…'));
  const privacy = el('div', null);
  const participation = el('div', null);
  const quality = el('div', null);
  const ledger = el('div', null);
  const versions = el('div', null);
  const clients = el('div', null);
  const card = el('div', { class: 'card-view' });
  const section = (title: string, slug: string, ...children: Child[]) =>
    el('section', { class: 'panel', attrs: { 'aria-labelledby': `${slug}-title`, id: slug } }, el('h2', { attrs: { id: `${slug}-title` } }, title), ...children);
  const node = el(
    'article',
    { class: 'job', attrs: { 'data-job': id } },
    head,
    section('Privacy budget', 'privacy', privacy),
    el('div', { class: 'grid' }, section('Participation per round', 'participation', participation), section('Model quality', 'quality', quality)),
    section('Privacy ledger', 'ledger', ledger),
    section('Versions', 'versions', versions, card),
    section('Clients', 'clients', clients),
  );
  let charts: Chart[] = [];

  const showCard = async (round: number) => {
    try {
      const text = await apiText(`${path}/versions/${round}/card?format=md`);
      replace(card, el('h3', null, `Model card of version ${round}`), el('pre', { attrs: { 'data-testid': 'model-card', tabindex: 0 } }, text));
    } catch (err) {
      ctx.fail(err);
    }
  };

  const promote = async (v: Version) => {
    const { ok, force } = await confirmAction(`Promote version ${v.round} of ${id}?`, `Version ${v.round} becomes the production model of ${id}.`, 'Promote', {
      force: 'Promote even if it fails a promotion gate',
    });
    if (!ok) return;
    try {
      await api(`${path}/versions/${v.round}/promote`, { method: 'POST', body: force ? { force: true } : {} });
      announce(`Version ${v.round} of ${id} is now production.`);
    } catch (err) {
      ctx.fail(err);
    }
    refresh();
  };
  const rollback = async () => {
    const { ok } = await confirmAction(`Roll back ${id}?`, 'The production tag moves back to the version that held it before.', 'Roll back');
    if (!ok) return;
    try {
      await api(`${path}/rollback`, { method: 'POST', body: {} });
      announce(`Rolled back the production version of ${id}.`);
    } catch (err) {
      ctx.fail(err);
    }
    refresh();
  };

  const render = (job: JobSummary, led: Ledger, rounds: Rounds, parts: RoundParticipation[], vs: Version[], cs: JobClientRow[]) => {
    node.dataset.committedRound = String(job.round);
    node.dataset.status = job.status;
    replace(
      head,
      el('h1', null, 'Job ', el('span', { class: 'mono' }, job.id)),
      el(
        'p',
        { class: 'facts' },
        statusBadge(job.status),
        ` round ${job.round} of ${job.rounds} · ${job.connected} client${job.connected === 1 ? '' : 's'} connected · DP ${job.dp} · `,
        epsilonGauge(job),
        ` · production: ${job.production === null ? 'none' : `version ${job.production}`}`,
      ),
      job.reason ? el('p', { class: 'reason' }, `Reason: ${job.reason}`) : null,
      lifecycleButtons(ctx, job, refresh),
    );
    for (const c of charts) c.destroy();
    charts = [];
    const committed = led.rows.filter((r) => r.status === 'committed');
    const readout = el('div', { class: 'readout-box', attrs: { 'aria-live': 'off' } }, ledgerReadout(committed[committed.length - 1] ?? null));
    if (led.spent) {
      const eps = epsilonChart(led.rows, led.budget ?? null, led.nextRound?.epsilon ?? null, (row) => replace(readout, ledgerReadout(row ?? committed[committed.length - 1] ?? null)));
      charts.push(eps);
      replace(
        privacy,
        el('p', null, `ε against ${led.against === 'coordinator' ? 'the coordinator' : 'model consumers'} at δ = ${num(led.delta ?? null)}; next round projected ${num(led.nextRound?.epsilon ?? null, 4)}.`),
        el('div', { class: 'privacy-body' }, eps.node, readout),
      );
    } else replace(privacy, el('p', null, 'This job runs without differential privacy: it spends no ε.'));
    const part = participationChart(parts);
    const qual = qualityChart(rounds.rounds, rounds.driftAlerts ?? []);
    charts.push(part, qual);
    replace(participation, part.node, rounds.attempts.length ? el('p', null, `${rounds.attempts.length} aborted attempt${rounds.attempts.length === 1 ? '' : 's'} (nothing published).`) : null);
    const alerts = rounds.driftAlerts ?? [];
    replace(
      quality,
      qual.node,
      alerts.length
        ? el(
            'ul',
            { class: 'drift-alerts', attrs: { 'data-testid': 'drift-alerts' } },
            ...alerts.map((a) => el('li', null, el('strong', null, `Drift alert at round ${a.round}`), `: ${a.reason}${a.action ? ` (action: ${a.action})` : ''}`)),
          )
        : null,
    );

    const ledgerCols: Column<LedgerRow>[] = LEDGER_COLUMNS.map((c) => ({ key: c.key, label: c.label, numeric: c.numeric, wide: c.wide, cell: (r) => ledgerCell(r, c.key), sort: (r) => r[c.key] as number | string | null }));
    replace(
      ledger,
      el(
        'button',
        { attrs: { type: 'button', 'data-action': 'ledger-csv' }, on: { click: () => saveBlob(new Blob([ledgerCsv(led.rows)], { type: 'text/csv' }), `${id}-ledger.csv`) } },
        'Download CSV',
      ),
      dataTable(ledgerCols, led.rows, { caption: `${led.rows.length} ledger rows`, limit: 100, testId: 'ledger-table', initialSort: { key: 'seq', dir: 'descending' }, rowAttrs: (r) => ({ 'data-seq': String(r.seq) }) }),
    );

    const production = vs.find((v) => v.production);
    const versionCols: Column<Version>[] = [
      { key: 'round', label: 'Version', cell: (v) => String(v.round), sort: (v) => v.round, numeric: true },
      { key: 'production', label: 'Tag', cell: (v) => (v.production ? el('span', { class: 'badge badge-production' }, 'production') : ''), sort: (v) => (v.production ? 1 : 0) },
      { key: 'epsilon', label: 'ε consumers / coordinator', cell: (v) => (v.epsilon ? `${num(v.epsilon.published)} / ${num(v.epsilon.coordinator)}` : '—') },
      { key: 'loss', label: 'Eval loss', cell: (v) => num(v.evaluation?.loss ?? null), sort: (v) => v.evaluation?.loss ?? null, numeric: true },
      { key: 'accuracy', label: 'Eval accuracy', cell: (v) => num(v.evaluation?.accuracy ?? null), sort: (v) => v.evaluation?.accuracy ?? null, numeric: true },
      {
        key: 'gates',
        label: 'Gates',
        cell: (v) =>
          v.gates.results.length === 0
            ? 'none set'
            : el(
                'span',
                { class: `badge badge-${v.gates.passed ? 'ok' : 'failed'}`, attrs: { title: v.gates.results.map((g) => `${g.gate} ${num(g.value)} against ${num(g.limit)}: ${g.passed ? 'passed' : 'failed'}`).join('; ') } },
                v.gates.passed ? 'passed' : `failed: ${v.gates.results.filter((g) => !g.passed).map((g) => g.gate).join(', ')}`,
              ),
        sort: (v) => (v.gates.passed ? 1 : 0),
      },
      { key: 'sha', label: 'SHA-256', cell: (v) => el('span', { class: 'mono', attrs: { title: v.sha256 } }, `${v.sha256.slice(0, 12)}…`) },
      {
        key: 'actions',
        label: 'Actions',
        cell: (v) =>
          el(
            'div',
            { class: 'row-actions' },
            el('button', { attrs: { type: 'button', 'data-action': 'card' }, on: { click: () => void showCard(v.round) } }, 'Card'),
            el('button', { attrs: { type: 'button', 'data-action': 'model-json' }, on: { click: () => void download(`${path}/versions/${v.round}/model.json`, `${id}-v${v.round}-model.json`).catch(ctx.fail) } }, 'model.json'),
            el('button', { attrs: { type: 'button', 'data-action': 'weights' }, on: { click: () => void download(`${path}/versions/${v.round}/weights.bin`, 'weights.bin').catch(ctx.fail) } }, 'weights.bin'),
            ctx.canOperate && !v.production
              ? el('button', { class: 'primary', attrs: { type: 'button', 'data-action': 'promote', 'aria-label': `Promote version ${v.round}` }, on: { click: () => void promote(v) } }, 'Promote')
              : null,
          ),
      },
    ];
    replace(
      versions,
      ctx.canOperate && production ? el('button', { attrs: { type: 'button', 'data-action': 'rollback' }, on: { click: () => void rollback() } }, 'Roll back production') : null,
      dataTable(versionCols, vs, { caption: `${vs.length} kept versions`, testId: 'versions-table', initialSort: { key: 'round', dir: 'descending' }, rowAttrs: (v) => ({ 'data-round': String(v.round) }) }),
    );

    const now = Date.now();
    replace(
      clients,
      el('p', { class: 'help' }, 'The clients sampled for a round of this job; last seen is by the coordinator, in any job. Identity: whether the key its id is bound to is active or revoked, and how it was bound (first use on loopback, a CA certificate, enrolment).'),
      dataTable<JobClientRow>(
        [
          { key: 'id', label: 'Client', cell: (c) => el('span', { class: 'mono' }, c.id), sort: (c) => c.id },
          { key: 'lastSeen', label: 'Last seen', cell: (c) => ago(c.lastSeen, now), sort: (c) => c.lastSeen },
          { key: 'rounds', label: 'Rounds joined', cell: (c) => String(c.roundsCompleted), sort: (c) => c.roundsCompleted, numeric: true },
          { key: 'dropped', label: 'Dropouts', cell: (c) => String(c.dropped), sort: (c) => c.dropped, numeric: true },
          { key: 'refused', label: 'Refused', cell: (c) => String(c.refused), sort: (c) => c.refused, numeric: true },
          { key: 'rejected', label: 'Rejected', cell: (c) => String(c.rejected), sort: (c) => c.rejected, numeric: true },
          { key: 'lastRound', label: 'Last round sampled', cell: (c) => String(c.lastRound), sort: (c) => c.lastRound, numeric: true },
          { key: 'examples', label: 'Examples', cell: (c) => num(c.numExamples), sort: (c) => c.numExamples, numeric: true },
          { key: 'firstSeen', label: 'First seen', cell: (c) => time(c.firstSeen), sort: (c) => c.firstSeen },
          {
            key: 'identity',
            label: 'Identity',
            cell: (c) => (c.identity ? el('span', { attrs: { title: c.identity.fingerprint, 'data-identity': c.identity.status } }, `${c.identity.status} (${c.identity.boundBy})`) : 'none'),
            sort: (c) => c.identity?.status ?? '',
          },
        ],
        cs,
        { caption: `${cs.length} clients`, testId: 'clients-table', limit: 200, initialSort: { key: 'lastSeen', dir: 'descending' }, rowAttrs: (c) => ({ 'data-client': c.id }) },
      ),
    );
  };

  const refresh = refresher(async () => {
    try {
      const [jobPath, ledgerPath, roundsPath, participationPath, versionsPath, clientsPath] = jobPaths(id);
      const [job, led, rounds, parts, vs, cs] = await Promise.all([
        api<JobSummary>(jobPath),
        api<Ledger>(ledgerPath),
        api<Rounds>(roundsPath),
        api<RoundParticipation[]>(participationPath),
        api<Version[]>(versionsPath),
        api<JobClientRow[]>(clientsPath),
      ]);
      render(job, led, rounds, parts, vs, cs);
    } catch (err) {
      replace(head, el('h1', null, 'Job ', el('span', { class: 'mono' }, id)), el('p', { class: 'error', attrs: { role: 'alert' } }, errorText(err)));
      ctx.fail(err);
    }
  });
  refresh();
  return {
    node,
    onNotice: (n) => {
      if (n === null || n.job === id || n.job === null) refresh();
    },
    destroy: () => charts.forEach((c) => c.destroy()),
  };
}
