/**
 * In-process driver for tests and the benchmark: runs one SecAgg round with real client and server
 * state machines and scripted dropouts. Not used by production code.
 */
import { ed25519KeyPair, type Ed25519KeyPair } from '../../crypto/ed25519.ts';
import { cryptoWords } from '../../random.ts';
import { SecAggClient, type SecAggClientOptions } from '../client.ts';
import type { SecAggClientMessage, SecAggServerMessage } from '../messages.ts';
import type { NeighborGraph } from '../graph.ts';
import type { RevocationList } from '../../identity/revocation.ts';
import { SecAggServer, type SecAggResult, type SecAggServerPhase } from '../server.ts';

/** The last phase a client answers in is the one before this: it goes silent from `dropBefore` on. */
export type DropPoint = 'advertise' | 'share' | 'collect' | 'consistency' | 'unmask';

export interface SimulationOptions {
  n: number;
  dim: number;
  bits: number;
  neighbors: number;
  threshold: number;
  minSurvivors: number;
  jobId?: string;
  round?: number;
  /**
   * Clients (by index) that go silent from the given phase on. A function is asked once the graph is
   * known (when Round 0 closes; the seed is derived from the advertisements), so a test can drop a
   * given client's neighbours; its drops take effect from Round 1 on.
   */
  drops?: ReadonlyMap<number, DropPoint> | ((graph: NeighborGraph) => ReadonlyMap<number, DropPoint>);
  /** Inputs per client (default: uniform random values mod 2^bits). */
  inputs?: Uint32Array[];
  identities?: Ed25519KeyPair[];
  /** Called with every server→client message before delivery; may return a replacement. */
  tamper?: (to: string, msg: SecAggServerMessage) => SecAggServerMessage;
  /** Called with every client→server message before delivery; may return a replacement. */
  tamperReply?: (from: string, msg: SecAggClientMessage) => SecAggClientMessage;
  /** Record timings of client and server work (ms). */
  timings?: { client: Map<string, number>; server: number };
  /** The attempt's nonce (default random). */
  nonce?: Uint8Array;
  /** A CA-signed revocation list the server relays in ShareKeysRequest. */
  revocations?: RevocationList;
  /** Extra options per client (a certificate, a neighbour check). */
  clientOptions?: (clientId: string, index: number) => Partial<SecAggClientOptions>;
}

export interface SimulationResult {
  server: SecAggServer;
  clients: SecAggClient[];
  ids: string[];
  inputs: Uint32Array[];
  result: SecAggResult;
  /** Errors clients threw (by id), e.g. aborts after detecting tampering. */
  clientErrors: Map<string, Error>;
  /** Errors the server threw on receive (by id). */
  serverErrors: Map<string, Error>;
  /** Σ x_u mod 2^bits over the given ids. */
  expectedSum(ids: Iterable<string>): Uint32Array;
}

const ORDER: SecAggServerPhase[] = ['advertise', 'share', 'collect', 'consistency', 'unmask'];

export function randomInputs(n: number, dim: number, bits: number): Uint32Array[] {
  return Array.from({ length: n }, () => {
    const v = new Uint32Array(dim);
    cryptoWords(v);
    if (bits < 32) for (let i = 0; i < dim; i++) v[i] &= 2 ** bits - 1;
    return v;
  });
}

export function simulateRound(opts: SimulationOptions): SimulationResult {
  const { n, dim, bits } = opts;
  const jobId = opts.jobId ?? 'job';
  const round = opts.round ?? 1;
  const ids = Array.from({ length: n }, (_, i) => `client-${String(i).padStart(4, '0')}`);
  const identities = opts.identities ?? ids.map(() => ed25519KeyPair());
  const inputs = opts.inputs ?? randomInputs(n, dim, bits);
  const timings = opts.timings;
  const timed = <T>(who: string | undefined, fn: () => T): T => {
    if (!timings) return fn();
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      const ms = performance.now() - t0;
      if (who === undefined) timings.server += ms;
      else timings.client.set(who, (timings.client.get(who) ?? 0) + ms);
    }
  };
  const server = timed(undefined, () => new SecAggServer({
    jobId,
    round,
    cohort: ids,
    params: { neighbors: opts.neighbors, threshold: opts.threshold, bits, dim },
    minSurvivors: opts.minSurvivors,
    identityKeys: new Map(ids.map((id, i) => [id, identities[i].publicKey])),
    ...(opts.nonce ? { nonce: opts.nonce } : {}),
    ...(opts.revocations ? { revocations: opts.revocations } : {}),
  }));
  const clients = ids.map((clientId, i) => new SecAggClient({ clientId, jobId, round, identity: identities[i], ...opts.clientOptions?.(clientId, i) }));
  const clientErrors = new Map<string, Error>();
  const serverErrors = new Map<string, Error>();
  for (let i = 0; i < n; i++) clients[i].setInput(inputs[i]);

  let drops = typeof opts.drops === 'function' ? undefined : opts.drops;
  const silent = (i: number, phase: SecAggServerPhase): boolean => {
    if (typeof opts.drops === 'function' && !drops && server.graph) drops = opts.drops(server.graph);
    const d = drops?.get(i);
    return d !== undefined && ORDER.indexOf(phase) >= ORDER.indexOf(d);
  };

  let outgoing = timed(undefined, () => server.start());
  while (server.phase !== 'done' && server.phase !== 'aborted') {
    const phase = server.phase;
    for (const [id, raw] of outgoing) {
      const i = ids.indexOf(id);
      if (silent(i, phase)) continue;
      const msg = opts.tamper ? opts.tamper(id, raw) : raw;
      let replies: SecAggClientMessage[] = [];
      try {
        replies = timed(id, () => clients[i].handle(msg));
      } catch (e) {
        clientErrors.set(id, e as Error);
      }
      for (const r of replies) {
        const reply = opts.tamperReply ? opts.tamperReply(id, r) : r;
        try {
          timed(undefined, () => server.receive(id, reply));
        } catch (e) {
          serverErrors.set(id, e as Error);
        }
      }
    }
    outgoing = timed(undefined, () => server.advance());
  }

  return {
    server,
    clients,
    ids,
    inputs,
    result: server.result(),
    clientErrors,
    serverErrors,
    expectedSum(included) {
      const sum = new Uint32Array(dim);
      for (const id of included) {
        const x = inputs[ids.indexOf(id)];
        for (let j = 0; j < dim; j++) sum[j] += x[j];
      }
      if (bits < 32) for (let j = 0; j < dim; j++) sum[j] &= 2 ** bits - 1;
      return sum;
    },
  };
}
