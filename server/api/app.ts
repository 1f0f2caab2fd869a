/**
 * The admin HTTP API (fastify) of a coordinator: jobs and their lifecycle, rounds, the privacy ledger
 * with both audiences' ε, model versions as tfjs artifacts, clients, the audit log, Prometheus metrics
 * and its own OpenAPI document. Every route is declared once in ROUTES — method, path, the role it
 * needs, its zod schemas — and both the fastify routes and the OpenAPI document are made from that table.
 *
 * Errors are `{ "error": { "code", "message", "issues"? } }` with the code's HTTP status from the one
 * registry (shared/errors.ts); never a stack trace. A denied request (401/403/429) changes nothing and
 * is audited; every state change made through the API is audited with the token's name as the actor.
 *
 * The same server carries the dashboard's static files (dashboard.ts, at / and /assets) and the live
 * feed the dashboard follows (events.ts, GET /api/v1/events, a route of the table like any other).
 */
import { gzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CohortError, ERRORS, httpStatus, isCohortErrorCode } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import { systemClock, type Clock } from '../round/clock.ts';
import { parseJobConfig, type JobConfig } from '../round/config.ts';
import type { RoundEngine } from '../round/engine.ts';
import type { CohortMetrics } from '../ops/metrics.ts';
import { exportSizes, exportVersion, WEIGHTS_FILE } from '../ops/export.ts';
import { EXPORT_FORMATS, type ExportFormat } from '../../shared/model/quantize.ts';
import { checkGates } from '../ops/gates.ts';
import type { HealthReport } from '../../shared/evaluation/index.ts';
import { gatesOf, modelCard, version } from '../ops/versions.ts';
import type { AuditEntry, CohortStore, TokenRow } from '../store/index.ts';
import { allows, Authenticator, type Access } from './auth.ts';
import { registerDashboard } from './dashboard.ts';
import { LiveEvents } from './events.ts';
import { openApiDocument } from './openapi.ts';
import type { Federation } from '../identity/federation.ts';
import { RevocationListSchema } from '../../shared/identity/index.ts';
import { keyFingerprint } from '../../shared/identity/index.ts';
import { fromBase64Url } from '../../shared/crypto/bytes.ts';
import { registerBrowserClient } from './browser-client.ts';
import type { Ctx, RouteSpec } from './types.ts';

/** What the API reads and steers of a job's round engine (a finished job of a restarted service has a stored view: server/ops/archived.ts). */
export type JobEngineView = Pick<RoundEngine, 'status' | 'pausedBecause' | 'lastCommittedRound' | 'connectedClients' | 'privacy' | 'pause' | 'resume' | 'stop'>;

/** A job the API can see and steer: its config and its round engine. */
export interface JobHandle {
  readonly id: string;
  readonly config: JobConfig;
  readonly engine: JobEngineView;
}

export interface JobDirectory {
  list(): JobHandle[];
  get(id: string): JobHandle | undefined;
  /** Starts a submitted job (the multi-job service); absent on the one-job coordinator. */
  submit?(config: JobConfig): Promise<JobHandle>;
}

export interface AdminApiOptions {
  store: CohortStore;
  jobs: JobDirectory;
  metrics?: CohortMetrics;
  logger?: Logger;
  clock?: Clock;
  /** Request bodies above this are refused with 413 (default 1 MiB). */
  bodyLimit?: number;
  /** Client identities (server/identity): enrolment tokens, revocation, the identity column of /clients. */
  federation?: Federation;
  /**
   * Serve HTTPS (and so WSS for the Socket.IO server attached to `app.server`): the certificate chain
   * and key as PEM, and how long a TLS handshake may take (node:tls `handshakeTimeout`).
   */
  https?: { cert: string; key: string; handshakeTimeout?: number };
}

const jobParams = z.object({ id: z.string().min(1).max(200) }).strict();
const versionParams = z.object({ id: z.string().min(1).max(200), round: z.coerce.number().int().min(1) }).strict();
const reasonBody = z.object({ reason: z.string().max(500).optional() }).strict();
const promoteBody = z.object({ force: z.boolean().optional() }).strict();
const tokenBody = z.object({ name: z.string().min(1).max(100), role: z.enum(['viewer', 'operator', 'admin']) }).strict();
const tokenParams = z.object({ token: z.string().min(1).max(200) }).strict();
const clientParams = z.object({ id: z.string().min(1).max(128) }).strict();
const enrolBody = z
  .object({
    clientId: z.string().regex(/^[A-Za-z0-9._:@-]{1,128}$/, 'a client id: letters, digits and . _ : @ -'),
    jobs: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,128}$|^\*$/)).min(1).max(100).optional(),
    /** Seconds the token stays usable (default one day). */
    expiresInSeconds: z.number().int().min(1).max(366 * 86_400).optional(),
  })
  .strict();
const formatParams = z.object({ id: z.string().min(1).max(200), round: z.coerce.number().int().min(1), format: z.enum(EXPORT_FORMATS) }).strict();
const cardQuery = z.object({ format: z.enum(['json', 'md']).optional() }).strict();
/** `none`: the weights as trained, without the served temperature folded in (issue 18). */
const exportQuery = z.object({ temperature: z.enum(['served', 'none']).optional() }).strict();
const auditQuery = z
  .object({
    actor: z.string().max(200).optional(),
    action: z.string().max(200).optional(),
    job: z.string().max(200).optional(),
    since: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(10_000).optional(),
  })
  .strict();

export function buildAdminApi(opts: AdminApiOptions): FastifyInstance {
  const { store, jobs } = opts;
  const log = (opts.logger ?? silentLogger).child({ component: 'api' });
  const clock = opts.clock ?? systemClock;
  const auth = new Authenticator(store, clock);
  const live = new LiveEvents(jobs, () => new Set(store.listTokens().filter((t) => t.revokedAt === null).map((t) => t.id)));
  const audit = (entry: AuditEntry): void => {
    try {
      store.appendAudit(entry);
    } catch (err) {
      log.error({ err, action: entry.action }, 'cannot append to the audit log');
      throw err;
    }
  };

  const job = (id: string): JobHandle => {
    const found = jobs.get(id);
    if (!found) throw new CohortError('API_NOT_FOUND', `no job ${JSON.stringify(id)}`);
    return found;
  };
  const checkpointOf = (id: string, round: number) => {
    const cp = store.checkpoint(id, round);
    if (!cp) {
      const kept = store.checkpointRounds(id);
      const committed = store.getJob(id)?.currentRound ?? 0;
      throw new CohortError(round <= committed ? 'API_CONFLICT' : 'API_NOT_FOUND', round <= committed ? `version ${round} of ${id} was pruned (kept: ${kept.join(', ') || 'none'})` : `job ${id} has no version ${round}`);
    }
    return cp;
  };
  /** The job and kept version a version route names (404 / 409 as checkpointOf says). */
  const versionOf = (ctx: Ctx) => {
    const h = job(ctx.params.id);
    const round = Number(ctx.params.round);
    return { h, round, checkpoint: checkpointOf(h.id, round) };
  };
  /**
   * The temperature a version is served with (issue 18): with `health.temperatureScaling`, the best T of
   * the latest federated evaluation at or before its round; folded into the exported weights unless the
   * request says `?temperature=none`.
   */
  const servedTemperature = (ctx: Ctx, h: JobHandle, round: number): number | undefined => {
    if (!h.config.health.temperatureScaling || (ctx.query as { temperature?: string }).temperature === 'none') return undefined;
    let best: number | undefined;
    for (const e of store.listEvaluations(h.id)) {
      if (e.kind === 'federated' && e.round <= round && e.health?.temperature) best = e.health.temperature.best;
    }
    return best;
  };
  /** A version's export, the served temperature folded in (or not, with ?temperature=none). */
  const exported = (ctx: Ctx, format: ExportFormat = 'float32') => {
    const { h, round, checkpoint } = versionOf(ctx);
    const temperature = servedTemperature(ctx, h, round);
    // tf.loadLayersModel fetches weights.bin with model.json's query string appended: the pair agrees.
    return exportVersion(h.config, checkpoint.weights, format, temperature === undefined ? {} : { temperature });
  };
  const jobSummary = (h: JobHandle) => {
    const row = store.getJob(h.id);
    const e = h.engine;
    const dp = h.config.dp;
    return {
      id: h.id,
      status: row?.status ?? 'created',
      state: e.status,
      reason: row?.reason ?? e.pausedBecause ?? null,
      round: e.lastCommittedRound,
      rounds: h.config.rounds,
      connected: e.connectedClients,
      dp: dp.mode,
      epsilon: e.privacy.enabled ? { ...e.privacy.epsilons, budget: dp.budget?.epsilon ?? null, against: e.privacy.audience, delta: e.privacy.delta } : null,
      production: store.productionTag(h.id)?.round ?? null,
    };
  };
  /** A lifecycle change by a person: applied, audited (also when refused), answered with the job. */
  const lifecycle = (ctx: Ctx, action: 'pause' | 'resume' | 'stop') => {
    const h = job(ctx.params.id);
    const actor = ctx.token!.name;
    const reason = (ctx.body as { reason?: string } | undefined)?.reason ?? `${action} by ${actor}`;
    const state = h.engine.status;
    const refuse = (why: string) => {
      audit({ actor, action: `job.${action}`, target: h.id, outcome: 'failed', details: { state, why } });
      throw new CohortError('API_CONFLICT', `cannot ${action} job ${h.id}: ${why}`);
    };
    if (state === 'finished') refuse('it has finished');
    if (action === 'pause') {
      if (state === 'paused') refuse('it is already paused');
      h.engine.pause(reason);
    } else if (action === 'resume') {
      if (!h.engine.resume()) refuse('it is not paused');
    } else {
      void h.engine.stop(reason, { keepTransport: true });
    }
    audit({ actor, action: `job.${action}`, target: h.id, outcome: 'ok', details: { reason } });
    live.publish({ kind: 'lifecycle', job: h.id, data: { action, actor } });
    return jobSummary(h);
  };

  const federationOf = (): Federation => {
    if (!opts.federation) throw new CohortError('API_CONFLICT', 'this coordinator manages no client identities');
    return opts.federation;
  };

  /** Each job's ledger rows as JSON, with the head they were read at, and the last answer made of them. */
  const ledgerRows = new Map<string, { head: number; json: string; answer: { rest: string; json: RawJson } | undefined }>();

  const routes: RouteSpec[] = [
    { method: 'GET', url: '/healthz', access: 'public', summary: 'liveness: the service answers', handler: () => ({ ok: true, jobs: jobs.list().length }) },
    {
      method: 'GET',
      url: '/metrics',
      access: 'viewer',
      summary: 'Prometheus metrics (text exposition)',
      produces: 'text/plain; version=0.0.4; charset=utf-8',
      handler: async () => (opts.metrics ? opts.metrics.metrics() : ''),
    },
    { method: 'GET', url: '/api/v1/jobs', access: 'viewer', summary: 'every job: status, round, clients, ε against each audience, production version', handler: () => jobs.list().map(jobSummary) },
    {
      method: 'POST',
      url: '/api/v1/jobs',
      access: 'operator',
      summary: 'submit a job (the body is a job config, validated like `cohort server --config`); clients join it at the namespace /jobs/<id>',
      handler: async (ctx) => {
        const actor = ctx.token!.name;
        if (!jobs.submit) throw new CohortError('API_CONFLICT', 'this coordinator runs one job (cohort server); submit jobs to `cohort serve`');
        let config: JobConfig;
        try {
          config = parseJobConfig(ctx.body, 'job config');
        } catch (err) {
          audit({ actor, action: 'job.submit', outcome: 'failed', details: { error: (err as CohortError).code } });
          throw err;
        }
        const h = await jobs.submit(config).catch((err: unknown) => {
          audit({ actor, action: 'job.submit', target: config.id, outcome: 'failed', details: { error: (err as CohortError).code ?? 'INTERNAL' } });
          throw err;
        });
        audit({ actor, action: 'job.submit', target: h.id, outcome: 'ok' });
        return jobSummary(h);
      },
    },
    {
      method: 'GET',
      url: '/api/v1/jobs/:id',
      access: 'viewer',
      summary: 'one job, with its config',
      params: jobParams,
      handler: (ctx) => {
        const h = job(ctx.params.id);
        return { ...jobSummary(h), config: h.config };
      },
    },
    { method: 'POST', url: '/api/v1/jobs/:id/pause', access: 'operator', summary: 'hold the job (the attempt in flight is abandoned: nothing published)', params: jobParams, body: reasonBody, handler: (ctx) => lifecycle(ctx, 'pause') },
    { method: 'POST', url: '/api/v1/jobs/:id/resume', access: 'operator', summary: 'continue a paused job', params: jobParams, body: reasonBody, handler: (ctx) => lifecycle(ctx, 'resume') },
    { method: 'POST', url: '/api/v1/jobs/:id/stop', access: 'operator', summary: 'stop the job for good', params: jobParams, body: reasonBody, handler: (ctx) => lifecycle(ctx, 'stop') },
    {
      method: 'GET',
      url: '/api/v1/jobs/:id/rounds',
      access: 'viewer',
      summary: 'committed rounds (cohort, survivors, dropouts, loss, accuracy, duration), aborted attempts, and the drift alerts of the evaluations (round, reason, action)',
      params: jobParams,
      handler: (ctx) => {
        const h = job(ctx.params.id);
        const driftAlerts = store.listEvaluations(h.id).flatMap((e) =>
          e.kind === 'federated' && e.health?.drift?.alert ? [{ round: e.round, reason: e.health.drift.alert, action: h.config.health.drift?.onDrift ?? null }] : [],
        );
        return { rounds: store.listRounds(h.id), attempts: store.listRoundAttempts(h.id), driftAlerts };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/jobs/:id/participation',
      access: 'viewer',
      summary: "per round, its last attempt's clients by outcome: completed (survived), dropped, refused, rejected",
      params: jobParams,
      handler: (ctx) => store.roundParticipation(job(ctx.params.id).id),
    },
    {
      method: 'GET',
      url: '/api/v1/jobs/:id/clients',
      access: 'viewer',
      summary: 'the clients that took part in the job: first and last seen, examples, rounds completed, dropouts, refusals, rejections, last round sampled, and their identity (key fingerprint, how it was bound, active or revoked)',
      params: jobParams,
      handler: (ctx) => {
        const ids = new Map(store.identities.list().map((r) => [r.clientId, r]));
        return store.jobClients(job(ctx.params.id).id).map((c) => ({ ...c, identity: identityView(ids.get(c.id)) }));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/jobs/:id/ledger',
      access: 'viewer',
      summary: 'the privacy ledger: every release, ε against each audience, the budget, and the projection after the next round',
      params: jobParams,
      handler: (ctx) => {
        const h = job(ctx.params.id);
        const p = h.engine.privacy;
        const minSurvivors = h.config.minSurvivors ?? h.config.minClients;
        // The rows are append-only: serialised (and gzipped) once per new row or projection, not per
        // request — a 1,000-round ledger is ~1 MB of JSON (~10 ms a request to rebuild, and a loaded event
        // loop to send): bench/admin.ts.
        const head = store.ledgerHead(h.id);
        let rows = ledgerRows.get(h.id);
        if (!rows || rows.head !== head) {
          rows = { head, json: JSON.stringify(store.listLedger(h.id)), answer: undefined };
          ledgerRows.set(h.id, rows);
        }
        const rest = {
          ...(p.enabled
            ? {
                spent: p.epsilons,
                against: p.audience,
                delta: p.delta,
                budget: h.config.dp.budget?.epsilon ?? null,
                nextRound: h.engine.status === 'finished' ? null : p.projectNext(Math.max(h.engine.connectedClients, h.config.minClients), minSurvivors),
              }
            : { spent: null }),
        };
        const restJson = JSON.stringify(rest);
        if (rows.answer?.rest !== restJson) rows.answer = { rest: restJson, json: new RawJson(`{"rows":${rows.json},${restJson.slice(1)}`) };
        return rows.answer.json;
      },
    },
    {
      method: 'GET',
      url: '/api/v1/jobs/:id/versions',
      access: 'viewer',
      summary: "model versions: every kept checkpoint with its sha-256, ε at that version, evaluation, the job's promotion gates checked against it, and the production tag",
      params: jobParams,
      handler: (ctx) => {
        const h = job(ctx.params.id);
        const rounds = new Map(store.listRounds(h.id).map((r) => [r.round, r]));
        const ledger = new Map(store.listLedger(h.id).filter((r) => r.status === 'committed').map((r) => [r.round, r]));
        const production = store.productionTag(h.id)?.round;
        const health = new Map(store.listEvaluations(h.id).flatMap((e) => (e.kind === 'federated' && e.health ? [[e.round, e.health] as const] : [])));
        return store.checkpointRounds(h.id).map((round) => ({
          round,
          sha256: store.checkpoint(h.id, round)!.checksum,
          epsilon: ledger.get(round) ? { published: ledger.get(round)!.epsilonPublished, coordinator: ledger.get(round)!.epsilonCoordinator, delta: ledger.get(round)!.delta } : null,
          evaluation: rounds.get(round)?.evaluation ?? null,
          production: round === production,
          health: healthHeadline(health.get(round)),
          gates: checkGates(
            h.config.promote,
            { evaluation: rounds.get(round)?.evaluation ?? null, epsilon: ledger.get(round)?.epsilon ?? null, health: health.get(round) ?? null },
            h.config.criteria,
          ),
        }));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/jobs/:id/health',
      access: 'viewer',
      summary:
        "model health per evaluated version (issue 18): metrics from the evaluators' summed statistics (per-class precision/recall/F1, accuracy, ECE and its reliability diagram, Brier, NLL), temperature scaling, per-group metrics and gaps, accuracy across clients, drift scores and alerts, success criteria",
      params: jobParams,
      handler: (ctx) => {
        const h = job(ctx.params.id);
        return store.listEvaluations(h.id).flatMap((e) => (e.kind === 'federated' && e.health ? [{ round: e.round, ...e.health }] : []));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/jobs/:id/versions/:round/model.json',
      access: 'viewer',
      summary:
        "a version as a tfjs LayersModel artifact (tf.loadLayersModel loads it; weights in weights.bin beside it); with health.temperatureScaling the served temperature is folded into the output layer (userDefinedMetadata.cohort says so), ?temperature=none for the weights as trained",
      params: versionParams,
      query: exportQuery,
      handler: (ctx) => exported(ctx).modelJson,
    },
    {
      method: 'GET',
      url: `/api/v1/jobs/:id/versions/:round/${WEIGHTS_FILE}`,
      access: 'viewer',
      summary: "a version's weights, little-endian float32, in the model's weight order (the served temperature folded in, as model.json says; ?temperature=none for the weights as trained)",
      params: versionParams,
      query: exportQuery,
      produces: 'application/octet-stream',
      handler: (ctx) => Buffer.from(exported(ctx).weightsBin),
    },
    {
      method: 'GET',
      url: '/api/v1/jobs/:id/versions/:round/exports',
      access: 'viewer',
      summary: "a version's exports (float32, float16, int8 per-channel affine): bytes of model.json + weights.bin, raw and gzipped",
      params: versionParams,
      handler: (ctx) => {
        const { h, checkpoint } = versionOf(ctx);
        return exportSizes(h.config, checkpoint.weights);
      },
    },
    {
      method: 'GET',
      url: '/api/v1/jobs/:id/versions/:round/:format/model.json',
      access: 'viewer',
      summary: "a version as a compressed tfjs artifact (format float32 | float16 | int8): float16 loads with stock tf.loadLayersModel; int8 (per-channel affine) with shared/model's artifactHandler",
      params: formatParams,
      query: exportQuery,
      handler: (ctx) => exported(ctx, ctx.params.format as ExportFormat).modelJson,
    },
    {
      method: 'GET',
      url: `/api/v1/jobs/:id/versions/:round/:format/${WEIGHTS_FILE}`,
      access: 'viewer',
      summary: "a compressed version's weights (little-endian; float16 halves, int8 bytes per kernel weight, float32 biases)",
      params: formatParams,
      query: exportQuery,
      produces: 'application/octet-stream',
      handler: (ctx) => Buffer.from(exported(ctx, ctx.params.format as ExportFormat).weightsBin),
    },
    {
      method: 'GET',
      url: '/api/v1/jobs/:id/versions/:round/card',
      access: 'viewer',
      summary: "a version's model card (JSON, or Markdown with ?format=md): data, training, ε/δ and trust, SecAgg, evaluation, gates",
      params: versionParams,
      query: cardQuery,
      handler: (ctx) => {
        const { h, round } = versionOf(ctx);
        const { card, markdown } = modelCard(h.config, store, h.id, round);
        if (ctx.query.format === 'md') return ctx.reply.type('text/markdown; charset=utf-8').send(markdown);
        return card;
      },
    },
    {
      method: 'POST',
      url: '/api/v1/jobs/:id/versions/:round/promote',
      access: 'operator',
      summary: "tag a version production (never pruned while tagged); a version failing the job's promotion gates needs {\"force\": true}",
      params: versionParams,
      body: promoteBody,
      handler: (ctx) => {
        const { h, round } = versionOf(ctx);
        const actor = ctx.token!.name;
        const gates = gatesOf(h.config, version(store, h.id, round));
        const force = (ctx.body as { force?: boolean }).force === true;
        if (!gates.passed && !force) {
          audit({ actor, action: 'version.promote', target: `${h.id}/${round}`, outcome: 'failed', details: { gates: gates.results } });
          throw new CohortError('API_CONFLICT', `version ${round} of ${h.id} fails its promotion gates (${gates.results.filter((g) => !g.passed).map((g) => g.gate).join(', ')}); send {"force": true} to promote it anyway`, {
            issues: gates.results.filter((g) => !g.passed).map((g) => ({ path: g.gate, message: `${g.value ?? 'no value'} against ${g.limit}` })),
          });
        }
        const tag = store.setProductionTag({ jobId: h.id, round, actor, forced: !gates.passed });
        audit({ actor, action: 'version.promote', target: `${h.id}/${round}`, outcome: 'ok', details: { forced: !gates.passed, gates: gates.results } });
        live.publish({ kind: 'version', job: h.id, data: { action: 'promote', round, actor } });
        return tag;
      },
    },
    {
      method: 'POST',
      url: '/api/v1/jobs/:id/rollback',
      access: 'operator',
      summary: 'move the production tag back to the version that held it before',
      params: jobParams,
      handler: (ctx) => {
        const h = job(ctx.params.id);
        const history = store.tagHistory(h.id);
        const current = store.productionTag(h.id);
        const kept = new Set(store.checkpointRounds(h.id));
        const previous = [...history].reverse().find((t) => current && t.round !== current.round && kept.has(t.round));
        if (!previous) {
          audit({ actor: ctx.token!.name, action: 'version.rollback', target: h.id, outcome: 'failed', details: { why: 'no earlier kept production version' } });
          throw new CohortError('API_CONFLICT', `job ${h.id} has no earlier production version to roll back to`);
        }
        const tag = store.setProductionTag({ jobId: h.id, round: previous.round, actor: ctx.token!.name, forced: false });
        audit({ actor: ctx.token!.name, action: 'version.rollback', target: `${h.id}/${previous.round}`, outcome: 'ok', details: { from: current!.round } });
        live.publish({ kind: 'version', job: h.id, data: { action: 'rollback', round: previous.round, actor: ctx.token!.name } });
        return tag;
      },
    },
    { method: 'GET', url: '/api/v1/tokens', access: 'admin', summary: 'API tokens: id, name, role, created, last used, revoked (never the token or its hash)', handler: () => store.listTokens() },
    {
      method: 'POST',
      url: '/api/v1/tokens',
      access: 'admin',
      summary: 'create an API token {name, role}; the answer holds the token, shown only this once (the store keeps its SHA-256)',
      body: tokenBody,
      handler: (ctx) => {
        const { name, role } = ctx.body as z.output<typeof tokenBody>;
        const actor = ctx.token!.name;
        try {
          const { token, row } = store.createToken({ name, role });
          audit({ actor, action: 'token.create', target: row.id, outcome: 'ok', details: { name, role } });
          return { token, ...row };
        } catch (err) {
          audit({ actor, action: 'token.create', target: name, outcome: 'failed', details: { name, role, error: (err as CohortError).code ?? 'INTERNAL' } });
          throw err;
        }
      },
    },
    {
      method: 'POST',
      url: '/api/v1/tokens/:token/revoke',
      access: 'admin',
      summary: 'revoke a token by id or name (it stops working at once; its row stays so audit actors stay explained)',
      params: tokenParams,
      handler: (ctx) => {
        const actor = ctx.token!.name;
        const target = ctx.params.token;
        try {
          const row = store.revokeToken(target);
          audit({ actor, action: 'token.revoke', target: row.id, outcome: 'ok', details: { name: row.name, role: row.role } });
          return row;
        } catch (err) {
          audit({ actor, action: 'token.revoke', target, outcome: 'failed', details: { error: (err as CohortError).code ?? 'INTERNAL' } });
          throw err;
        }
      },
    },
    {
      method: 'GET',
      url: '/api/v1/clients',
      access: 'viewer',
      summary: 'every client seen or enrolled: first and last seen, examples, rounds completed, its bound key and how (first use, certificate, enrolment), revocation',
      handler: () => {
        const ids = new Map(store.identities.list().map((r) => [r.clientId, r]));
        const seen = store.listClients();
        const rows = seen.map((c) => ({ ...c, identity: identityView(ids.get(c.id)) }));
        for (const [id, r] of ids) if (!seen.some((c) => c.id === id)) rows.push({ id, firstSeen: null, lastSeen: null, numExamples: null, roundsCompleted: 0, identity: identityView(r) } as never);
        return rows;
      },
    },
    {
      method: 'POST',
      url: '/api/v1/clients/enrolments',
      access: 'operator',
      summary: 'a one-time enrolment token for a client id (shown once): the device presents it with its key at its first hello and receives its certificate',
      body: enrolBody,
      handler: (ctx) => {
        const body = ctx.body as z.output<typeof enrolBody>;
        const fed = federationOf();
        const { token, row } = fed.createEnrolment({ clientId: body.clientId, jobs: body.jobs ?? ['*'], ttlMs: (body.expiresInSeconds ?? 86_400) * 1000, actor: ctx.token!.name });
        return { token, id: row.id, clientId: row.clientId, jobs: row.jobs, expiresAt: row.expiresAt };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/clients/enrolments',
      access: 'operator',
      summary: 'enrolment tokens (never their text): client, jobs, expiry, used',
      handler: () => store.identities.listEnrolments(),
    },
    {
      method: 'POST',
      url: '/api/v1/clients/:id/revoke',
      access: 'operator',
      summary: 'revoke a client: its connections close now, its hellos and certificates are refused until an operator re-admits it',
      params: clientParams,
      handler: (ctx) => {
        federationOf().revoke(ctx.params.id, ctx.token!.name);
        return { clientId: ctx.params.id, identity: identityView(store.identities.identity(ctx.params.id)) };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/clients/revocation-list',
      access: 'viewer',
      summary: "the federation CA's revocation list relayed to SecAgg rounds (clients that know the CA refuse neighbours on it), or null",
      handler: () => ({ revocationList: federationOf().revocationList() ?? null }),
    },
    {
      method: 'POST',
      url: '/api/v1/clients/revocation-list',
      access: 'admin',
      summary: 'upload an offline CA\'s signed revocation list (cohort ca revoke): it must verify against the CA key and be newer than the one held',
      body: RevocationListSchema,
      handler: (ctx) => {
        const list = federationOf().setRevocationList(ctx.body, ctx.token!.name);
        return { issuedAt: list.issuedAt, serials: list.serials.length };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/audit',
      access: 'viewer',
      summary: 'the audit log (hash-chained), filtered by actor, action, job, since, limit',
      query: auditQuery,
      handler: (ctx) => store.listAudit(ctx.query as z.output<typeof auditQuery>),
    },
    {
      method: 'GET',
      url: '/api/v1/audit/verify',
      access: 'viewer',
      summary: 'recomputes the audit hash chain: { ok, rows, head } or the first edited, deleted or moved row',
      handler: () => store.verifyAudit(),
    },
    { method: 'GET', url: '/api/v1/session', access: 'viewer', summary: "who the bearer token is: its id, name and role (the dashboard's sign-in)", handler: (ctx) => ({ id: ctx.token!.id, name: ctx.token!.name, role: ctx.token!.role }) },
    live.route(),
    { method: 'GET', url: '/api/v1/openapi.json', access: 'public', summary: 'this API as an OpenAPI 3.1 document', handler: () => document },
  ];
  const document = openApiDocument(routes);

  const base = { logger: false, bodyLimit: opts.bodyLimit ?? 1024 * 1024, return503OnClosing: false } as const;
  // With `https` fastify creates a node:https server; its instance type differs only in the server's.
  const app = opts.https ? (Fastify({ ...base, https: opts.https }) as unknown as FastifyInstance) : Fastify(base);
  const send = (reply: FastifyReply, status: number, code: string, message: string, issues?: unknown) =>
    reply.status(status).type('application/json').send({ error: { code, message: message.slice(0, 1024), ...(issues ? { issues } : {}) } });
  app.addHook('preClose', (done) => {
    live.closeAll();
    done();
  });
  // Socket.IO closes the shared HTTP server itself (io.close() → server.close()) before fastify's close
  // hooks run, and server.close() waits for every connection: end the event streams first, or an open
  // dashboard would hold the server open for good; then give requests in flight a second and cut what is
  // left (a client that cancelled a stream without closing its socket would otherwise hold the close
  // until fastify's 72 s keep-alive timeout).
  const closeServer = app.server.close.bind(app.server);
  app.server.close = ((callback?: (err?: Error) => void) => {
    live.closeAll();
    const server = closeServer(callback);
    setTimeout(() => app.server.closeAllConnections(), 1000).unref();
    return server;
  }) as typeof app.server.close;
  registerDashboard(app);
  app.setNotFoundHandler((req, reply) => send(reply, 404, 'API_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0].slice(0, 200)}`));
  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    if (err instanceof CohortError) return send(reply, httpStatus(err), err.code, err.message, err.details?.issues);
    // fastify's own refusals (content type, body size, JSON syntax): typed, never a stack trace.
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return send(reply, 415, 'API_UNSUPPORTED_MEDIA', 'request bodies must be application/json');
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(reply, 413, 'API_TOO_LARGE', `request body above ${opts.bodyLimit ?? 1024 * 1024} bytes`);
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return send(reply, err.statusCode, 'API_BAD_REQUEST', err.message);
    log.error({ err, url: req.url }, 'admin API handler failed');
    return send(reply, 500, 'INTERNAL', 'internal error');
  });

  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        let token: TokenRow | undefined;
        if (route.access !== 'public') {
          try {
            token = auth.authenticate(req.headers.authorization, req.ip);
          } catch (err) {
            audit({ actor: 'anonymous', action: 'auth.denied', target: `${route.method} ${route.url}`, outcome: 'denied', details: { ip: req.ip, code: (err as CohortError).code } });
            throw err;
          }
          if (!allows(token.role, route.access)) {
            audit({ actor: token.name, action: 'auth.forbidden', target: `${route.method} ${route.url}`, outcome: 'denied', details: { ip: req.ip, role: token.role, needed: route.access } });
            throw new CohortError('API_FORBIDDEN', `role ${token.role} may not ${route.method} ${route.url} (needs ${route.access})`);
          }
        }
        const parse = <T extends z.ZodObject | undefined>(schema: T, value: unknown, where: string): Record<string, unknown> => {
          if (!schema) return (value ?? {}) as Record<string, unknown>;
          const r = schema.safeParse(value ?? {});
          if (!r.success) {
            throw new CohortError('API_BAD_REQUEST', `${where} is invalid: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, {
              issues: r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
            });
          }
          return r.data as Record<string, unknown>;
        };
        const ctx: Ctx = {
          params: parse(route.params, req.params, 'the path') as Record<string, string>,
          query: parse(route.query, req.query, 'the query'),
          body: route.method === 'POST' ? parse(route.body, req.body ?? {}, 'the body') : undefined,
          ...(token ? { token } : {}),
          reply,
        };
        const result = await route.handler(ctx);
        if (result instanceof RawJson) {
          reply.type('application/json').header('vary', 'accept-encoding');
          if (!/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) return reply.send(result.text);
          return reply.header('content-encoding', 'gzip').send(result.gzipped());
        }
        if (route.produces) return reply.type(route.produces).send(result);
        return reply.type('application/json').send(result);
      },
    });
  }
  registerBrowserClient(app);
  return app;
}

/** A client's identity as the API shows it: the key's fingerprint, not the key. */
function identityView(r: { publicKey: string; boundAt: number; boundBy: string; revokedAt: number | null; revokedBy: string | null } | undefined) {
  if (!r) return null;
  return { fingerprint: keyFingerprint(fromBase64Url(r.publicKey)), boundAt: r.boundAt, boundBy: r.boundBy, status: r.revokedAt === null ? 'active' : 'revoked', revokedAt: r.revokedAt, revokedBy: r.revokedBy };
}

/** A handler's answer already serialised as JSON, sent as it is; gzipped once, when a client first accepts it. */
class RawJson {
  private gz: Buffer | undefined;
  constructor(readonly text: string) {}
  gzipped(): Buffer {
    this.gz ??= gzipSync(this.text, { level: 6 });
    return this.gz;
  }
}

/** The registry's codes the API answers with, for the OpenAPI document's error schema. */
export const API_ERROR_CODES = Object.keys(ERRORS).filter((c) => isCohortErrorCode(c));

/** The figures of a version's health a versions list shows; the whole report is at /jobs/:id/health. */
function healthHeadline(h: HealthReport | undefined) {
  if (!h) return null;
  return {
    ece: h.metrics.ece,
    brier: h.metrics.brier,
    nll: h.metrics.nll,
    eceCalibrated: h.temperature?.calibrated?.ece ?? null,
    temperature: h.temperature?.best ?? null,
    groupAccuracyGap: h.fairness?.accuracyGap ?? null,
    worstDecileAccuracy: h.clientAccuracy?.worstDecile ?? null,
    driftAlert: h.drift?.alert ?? null,
    criteria: h.criteria ?? null,
  };
}
