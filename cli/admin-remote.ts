/**
 * `cohort admin jobs|ledger|versions|promote|rollback|download|tokens|audit …`: a thin client of a coordinator's admin
 * API (server/api). `--server URL --token T`, or COHORT_SERVER / COHORT_TOKEN. Human tables by default,
 * `--json` for scripts. Exit codes say what failed: 2 bad flags, 3 not authenticated or not allowed,
 * 4 no such job or version, 5 the transition is not possible now, 1 anything else.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { request as httpsRequest, type Agent } from 'node:https';
import { Readable } from 'node:stream';
import { nodeCertificateCheck } from '../client/node/tls.ts';
import { ConfigError } from '../shared/errors.ts';
import { checkServerUrl } from '../shared/transport-security.ts';

export interface RemoteOptions {
  server?: string;
  token?: string;
  json?: boolean;
  /** Allow plaintext http:// to a host that is not loopback (the token would cross the network in clear). */
  insecure?: boolean;
  /** A PEM CA bundle the coordinator's certificate must chain to (instead of the system store). */
  caFile?: string;
  /** `sha256:<hex>`: accept only the coordinator certificate with this fingerprint. */
  serverFingerprint?: string;
}

const EXIT: Record<number, number> = { 401: 3, 403: 3, 429: 3, 404: 4, 409: 5 };

/** An API refusal, with the exit code the CLI ends with. */
export class ApiRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiRefusal';
  }
  get exitCode(): number {
    // A coordinator whose certificate fails the check: a configuration error, as for `cohort client`.
    if (this.code.startsWith('TLS_')) return 2;
    return EXIT[this.status] ?? 1;
  }
}

function endpoint(o: RemoteOptions): { base: string; token: string } {
  const base = o.server ?? process.env.COHORT_SERVER;
  const token = o.token ?? process.env.COHORT_TOKEN;
  if (!base) throw new ConfigError('--server URL (or COHORT_SERVER) is required');
  if (!token) throw new ConfigError('--token T (or COHORT_TOKEN) is required; create one with `cohort admin token create`');
  try {
    new URL(base);
  } catch {
    throw new ConfigError(`--server must be a URL like http://127.0.0.1:8080, got ${base}`);
  }
  // A bearer token over plaintext to another machine is refused, as the FL client refuses plaintext.
  checkServerUrl(base, o.insecure);
  return { base: base.replace(/\/+$/, ''), token };
}

async function request(o: RemoteOptions, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
  const { base, token } = endpoint(o);
  let res: Response;
  const headers = { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) };
  const pinned = o.caFile !== undefined || o.serverFingerprint !== undefined;
  if (pinned && !base.startsWith('https:')) throw new ConfigError('--ca-file and --server-fingerprint check a TLS coordinator: use an https:// URL');
  const check = pinned ? nodeCertificateCheck({ ...(o.caFile ? { caFile: o.caFile } : {}), ...(o.serverFingerprint ? { serverFingerprint: o.serverFingerprint } : {}) }) : undefined;
  try {
    res = check
      ? await viaAgent(`${base}${path}`, method, headers, body === undefined ? undefined : JSON.stringify(body), check.socketOptions.agent as Agent)
      : await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  } catch (err) {
    // A certificate the check refused is a typed failure of its own (TLS_FINGERPRINT_MISMATCH, TLS_UNTRUSTED).
    const refused = check?.failure;
    if (refused) throw new ApiRefusal(0, refused.code, `${refused.code}: ${refused.message}`);
    throw new ApiRefusal(0, 'UNREACHABLE', `cannot reach ${base}: ${(err as Error).message}`);
  }
  if (!res.ok) {
    const text = await res.text();
    let code = 'HTTP_' + res.status;
    let message = text.slice(0, 1024);
    try {
      const e = (JSON.parse(text) as { error: { code: string; message: string } }).error;
      code = e.code;
      message = e.message;
    } catch {
      // not our error format; keep the text
    }
    throw new ApiRefusal(res.status, code, `${code}: ${message}`);
  }
  return res;
}

/** One request through `agent` (node:https, where the certificate check lives), answered as a fetch Response. */
function viaAgent(url: string, method: string, headers: Record<string, string>, body: string | undefined, agent: Agent): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method, headers, agent }, (res) => {
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
      const status = res.statusCode ?? 502;
      resolve(new Response(status === 204 || status === 304 ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers: h }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const json = async (o: RemoteOptions, method: 'GET' | 'POST', path: string, body?: unknown) => (await request(o, method, path, body)).json() as Promise<unknown>;
const enc = encodeURIComponent;

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
const eps = (x: unknown) => (typeof x === 'number' ? x.toFixed(4) : 'none');
const out = (text: string) => process.stdout.write(text);

interface JobView {
  id: string;
  status: string;
  round: number;
  rounds: number;
  connected: number;
  dp: string;
  epsilon: { published: number | null; coordinator: number | null; budget: number | null; against: string } | null;
  production: number | null;
}

export async function jobs(action: string, id: string | undefined, o: RemoteOptions): Promise<number> {
  if (action === 'list') {
    const list = (await json(o, 'GET', '/api/v1/jobs')) as JobView[];
    if (o.json) return (list.forEach((j) => out(`${JSON.stringify(j)}\n`)), 0);
    out(
      table(
        ['job', 'status', 'round', 'clients', 'dp', 'ε consumers', 'ε coordinator', 'budget', 'production'],
        list.map((j) => [j.id, j.status, `${j.round}/${j.rounds}`, String(j.connected), j.dp, eps(j.epsilon?.published), eps(j.epsilon?.coordinator), j.epsilon?.budget != null ? `${j.epsilon.budget} (${j.epsilon.against})` : '-', j.production === null ? '-' : String(j.production)]),
      ),
    );
    return 0;
  }
  if (!id) throw new ConfigError(`cohort admin jobs ${action} needs ${action === 'submit' ? 'a job config file' : 'a job id'}`);
  if (action === 'submit') {
    let config: unknown;
    try {
      config = JSON.parse(readFileSync(id, 'utf8'));
    } catch (err) {
      throw new ConfigError(`cannot read the job config ${id}: ${(err as Error).message}`);
    }
    const j = (await json(o, 'POST', '/api/v1/jobs', config)) as JobView;
    out(o.json ? `${JSON.stringify(j)}\n` : `job ${j.id} submitted: ${j.status}; clients join with \`cohort client --server ${endpoint(o).base} --job ${j.id}\`\n`);
    return 0;
  }
  if (action === 'show') {
    const j = (await json(o, 'GET', `/api/v1/jobs/${enc(id)}`)) as JobView;
    out(o.json ? `${JSON.stringify(j)}\n` : `${JSON.stringify(j, null, 2)}\n`);
    return 0;
  }
  if (action === 'pause' || action === 'resume' || action === 'stop') {
    const j = (await json(o, 'POST', `/api/v1/jobs/${enc(id)}/${action}`, {})) as JobView & { state: string };
    out(o.json ? `${JSON.stringify(j)}\n` : `job ${j.id}: ${j.status} (${j.state})\n`);
    return 0;
  }
  throw new ConfigError(`unknown jobs action ${action}: submit FILE | list | show ID | pause ID | resume ID | stop ID`);
}

export async function ledger(id: string | undefined, o: RemoteOptions): Promise<number> {
  if (!id) throw new ConfigError('cohort admin ledger needs a job id');
  const l = (await json(o, 'GET', `/api/v1/jobs/${enc(id)}/ledger`)) as {
    rows: Array<{ round: number; status: string; attempt: number | null; mode: string; epsilonPublished: number | null; epsilonCoordinator: number | null; delta: number }>;
    nextRound?: { published: number | null; coordinator: number | null } | null;
    against?: string;
  };
  if (o.json) return (out(`${JSON.stringify(l)}\n`), 0);
  out(table(['round', 'release', 'mode', 'ε consumers', 'ε coordinator', 'δ'], l.rows.map((r) => [String(r.round), r.status === 'attempt' ? `attempt ${r.attempt}` : r.status, r.mode, eps(r.epsilonPublished), eps(r.epsilonCoordinator), String(r.delta)])));
  if (l.nextRound) out(`after the next round: ε consumers ${eps(l.nextRound.published)}, ε coordinator ${eps(l.nextRound.coordinator)}; the budget is against ${l.against}\n`);
  return 0;
}

export async function versions(id: string | undefined, o: RemoteOptions): Promise<number> {
  if (!id) throw new ConfigError('cohort admin versions needs a job id');
  const v = (await json(o, 'GET', `/api/v1/jobs/${enc(id)}/versions`)) as Array<{ round: number; sha256: string; production: boolean; evaluation: { accuracy: number } | null; epsilon: { published: number | null } | null }>;
  if (o.json) return (v.forEach((x) => out(`${JSON.stringify(x)}\n`)), 0);
  out(table(['round', 'sha256', 'accuracy', 'ε consumers', 'production'], v.map((x) => [String(x.round), x.sha256.slice(0, 16), x.evaluation ? x.evaluation.accuracy.toFixed(4) : '-', eps(x.epsilon?.published), x.production ? 'yes' : ''])));
  return 0;
}

export async function promote(id: string | undefined, round: string | undefined, o: RemoteOptions & { force?: boolean }): Promise<number> {
  if (!id || !round || !/^[1-9]\d*$/.test(round)) throw new ConfigError('cohort admin promote needs a job id and a round number');
  const tag = await json(o, 'POST', `/api/v1/jobs/${enc(id)}/versions/${round}/promote`, o.force ? { force: true } : {});
  out(o.json ? `${JSON.stringify(tag)}\n` : `job ${id}: version ${round} is production${o.force ? ' (forced)' : ''}\n`);
  return 0;
}

export async function rollback(id: string | undefined, o: RemoteOptions): Promise<number> {
  if (!id) throw new ConfigError('cohort admin rollback needs a job id');
  const tag = (await json(o, 'POST', `/api/v1/jobs/${enc(id)}/rollback`, {})) as { round: number };
  out(o.json ? `${JSON.stringify(tag)}\n` : `job ${id}: version ${tag.round} is production again\n`);
  return 0;
}

export async function download(id: string | undefined, o: RemoteOptions & { round?: string; out?: string; quantize?: string }): Promise<number> {
  if (!id) throw new ConfigError('cohort admin download needs a job id');
  if (!o.out) throw new ConfigError('--out DIR is required');
  if (o.quantize !== undefined && o.quantize !== 'int8' && o.quantize !== 'float16') throw new ConfigError(`--quantize must be int8 or float16, got ${o.quantize}`);
  let round = o.round;
  if (round === undefined) {
    const j = (await json(o, 'GET', `/api/v1/jobs/${enc(id)}`)) as JobView;
    round = String(j.production ?? j.round);
  }
  if (!/^[1-9]\d*$/.test(round)) throw new ConfigError(`--round must be a round number, got ${round}`);
  const dir = resolve(o.out);
  mkdirSync(dir, { recursive: true });
  const base = `/api/v1/jobs/${enc(id)}/versions/${round}${o.quantize ? `/${o.quantize}` : ''}`;
  const model = await json(o, 'GET', `${base}/model.json`);
  const weights = new Uint8Array(await (await request(o, 'GET', `${base}/weights.bin`)).arrayBuffer());
  writeFileSync(join(dir, 'model.json'), JSON.stringify(model));
  writeFileSync(join(dir, 'weights.bin'), weights);
  const format = o.quantize ?? 'float32';
  out(o.json ? `${JSON.stringify({ dir, round: Number(round), format, bytes: weights.length })}\n` : `job ${id} version ${round} (${format}): ${dir}/model.json and weights.bin (${weights.length} bytes)\n`);
  return 0;
}

interface TokenView {
  id: string;
  name: string;
  role: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

const when = (t: number | null) => (t === null ? '-' : new Date(t).toISOString());

/** `tokens create NAME --role R | list | revoke ID|NAME` over the API (an admin token); `cohort admin token …` is the local bootstrap. */
export async function tokens(action: string, arg: string | undefined, o: RemoteOptions & { role?: string }): Promise<number> {
  if (action === 'list') {
    const list = (await json(o, 'GET', '/api/v1/tokens')) as TokenView[];
    if (o.json) return (list.forEach((t) => out(`${JSON.stringify(t)}\n`)), 0);
    out(table(['id', 'name', 'role', 'created', 'last used', 'revoked'], list.map((t) => [t.id, t.name, t.role, when(t.createdAt), when(t.lastUsedAt), when(t.revokedAt)])));
    return 0;
  }
  if (action === 'create') {
    if (!arg) throw new ConfigError('cohort admin tokens create needs a NAME');
    if (!o.role || !['viewer', 'operator', 'admin'].includes(o.role)) throw new ConfigError('--role viewer|operator|admin is required');
    const t = (await json(o, 'POST', '/api/v1/tokens', { name: arg, role: o.role })) as TokenView & { token: string };
    if (o.json) out(`${JSON.stringify(t)}\n`);
    else {
      out(`${t.token}\n`);
      process.stderr.write(`token ${t.id} (${t.name}, ${t.role}) created; it is shown only this once\n`);
    }
    return 0;
  }
  if (action === 'revoke') {
    if (!arg) throw new ConfigError('cohort admin tokens revoke needs a token id or name');
    const t = (await json(o, 'POST', `/api/v1/tokens/${enc(arg)}/revoke`, {})) as TokenView;
    out(o.json ? `${JSON.stringify(t)}\n` : `token ${t.id} (${t.name}) revoked at ${when(t.revokedAt)}\n`);
    return 0;
  }
  throw new ConfigError(`unknown tokens action ${action}: create NAME --role R | list | revoke ID|NAME`);
}

export interface RemoteAuditOptions extends RemoteOptions {
  verify?: boolean;
  job?: string;
  actor?: string;
  action?: string;
  limit?: string;
}

/** `cohort admin audit --server URL [--verify]`: the audit log over the API (the data dir is on another machine). */
export async function audit(o: RemoteAuditOptions): Promise<number> {
  if (o.verify) {
    const result = (await json(o, 'GET', '/api/v1/audit/verify')) as { ok: boolean; rows?: number; head?: string; seq?: number; reason?: string };
    if (o.json) out(`${JSON.stringify(result)}\n`);
    else if (result.ok) out(`audit chain holds: ${result.rows} rows, head ${result.head}\n`);
    else out(`audit chain broken at seq ${result.seq}: ${result.reason}\n`);
    return result.ok ? 0 : 1;
  }
  const query = new URLSearchParams();
  for (const key of ['job', 'actor', 'action', 'limit'] as const) if (o[key] !== undefined) query.set(key, o[key]);
  const rows = (await json(o, 'GET', `/api/v1/audit${query.size ? `?${query}` : ''}`)) as Array<{ seq: number; at: number; actor: string; action: string; target: string | null; outcome: string; details: unknown }>;
  if (o.json) return (rows.forEach((r) => out(`${JSON.stringify(r)}\n`)), 0);
  for (const r of rows) out(`${r.seq}  ${new Date(r.at).toISOString()}  ${r.actor}  ${r.action}  ${r.target ?? '-'}  ${r.outcome}${r.details ? ` ${JSON.stringify(r.details)}` : ''}\n`);
  return 0;
}

interface ClientView {
  id: string;
  lastSeen: number | null;
  roundsCompleted: number;
  identity: { fingerprint: string; boundBy: string; status: string; revokedAt: number | null } | null;
}

/** `cohort admin clients enroll NAME [--jobs a,b] [--expires 24h] | list | revoke NAME`: device identities over the API. */
export async function clients(action: string, arg: string | undefined, o: RemoteOptions & { jobs?: string; expires?: string }): Promise<number> {
  if (action === 'list') {
    const list = (await json(o, 'GET', '/api/v1/clients')) as ClientView[];
    if (o.json) return (list.forEach((c) => out(`${JSON.stringify(c)}\n`)), 0);
    out(table(['client', 'status', 'bound by', 'key', 'last seen', 'rounds'], list.map((c) => [c.id, c.identity?.status ?? '-', c.identity?.boundBy ?? '-', c.identity ? c.identity.fingerprint.slice(0, 23) + '…' : '-', when(c.lastSeen), String(c.roundsCompleted)])));
    return 0;
  }
  if (action === 'enroll' || action === 'enrol') {
    if (!arg) throw new ConfigError('cohort admin clients enroll needs the client id (NAME) the device will use');
    const { parseDuration, parseJobs } = await import('./ca.ts');
    const body = { clientId: arg, jobs: parseJobs(o.jobs), expiresInSeconds: Math.round(parseDuration(o.expires ?? '24h', '--expires') / 1000) };
    const e = (await json(o, 'POST', '/api/v1/clients/enrolments', body)) as { token: string; id: string; clientId: string; jobs: string[]; expiresAt: number };
    if (o.json) out(`${JSON.stringify(e)}\n`);
    else {
      out(`${e.token}\n`);
      process.stderr.write(`enrolment ${e.id} for ${e.clientId} (jobs ${e.jobs.join(',')}) until ${when(e.expiresAt)}; shown only this once, works once.\non the device: cohort client --id ${e.clientId} --enrol-token <token> --server … --data …\n`);
    }
    return 0;
  }
  if (action === 'revoke') {
    if (!arg) throw new ConfigError('cohort admin clients revoke needs a client id');
    const r = (await json(o, 'POST', `/api/v1/clients/${enc(arg)}/revoke`, {})) as { clientId: string; identity: ClientView['identity'] };
    out(o.json ? `${JSON.stringify(r)}\n` : `client ${r.clientId} revoked: its connections are closed and it cannot rejoin until re-enrolled\n`);
    return 0;
  }
  throw new ConfigError(`unknown clients action ${action}: enroll NAME [--jobs a,b] [--expires 24h] | list | revoke NAME`);
}
