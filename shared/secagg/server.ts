/**
 * The server side of secure aggregation: Bonawitz et al. CCS 2017, §4 (Rounds 0–4 with the
 * consistency check), on the SecAgg+ neighbour graph of Bell et al. CCS 2020, §3.
 *
 * A pure state machine driven by the round engine: `start()` opens Round 0 and returns the messages
 * to send; `receive(clientId, msg)` validates and records one client message (throwing a SecAggError,
 * and changing nothing, on rejection); `advance()` closes the current phase — whoever has not
 * answered is a dropout — and returns the next phase's messages. The engine calls `advance()` when
 * `phaseComplete()` or at the phase's deadline. `result()` gives the sum mod 2^b or the abort reason.
 *
 *   idle ─start─▶ advertise ─▶ share ─▶ collect ─▶ consistency ─▶ unmask ─▶ done
 *                     └──────────┴────────┴────────────┴────────────┴──▶ aborted (with a reason)
 *
 * Sets (Bonawitz's notation, cohort indices): U1 advertised keys, U2 sent encrypted shares, U3 sent
 * a masked input (these are in the sum), U4 signed U3, U5 answered Unmask. After Rounds 0 and 1 the
 * server drops, repeatedly, every client with fewer than t neighbours left, since such a client's
 * secrets could not be rebuilt (its neighbours would not have its shares).
 *
 * Dropout tolerance: the round aborts if |U1|, |U2| or |U3| falls below minSurvivors (so up to
 * n − minSurvivors clients may drop before sending their input), and, for clients that drop after
 * sending their input, if some secret the unmasking needs has fewer than t answering holders — i.e.
 * more than k − t of one client's neighbours are gone. That last check runs before Unmask is sent,
 * so an infeasible round aborts before any client reveals a share. Aggregation streams: each masked
 * input is added into one d-long accumulator as it arrives (O(d) memory, never O(n·d); accumulator.ts),
 * and Unmasking removes every self mask and every reconstructed pairwise mask in one chunk-major pass
 * with the round's announced mask PRG (crypto/prg.ts).
 *
 * The neighbour graph is not the coordinator's choice: its seed is derived, when Round 0 closes, from
 * the digests of every signed advertisement counted (keys.ts), and each client re-derives it from the
 * list ShareKeysRequest carries. What the coordinator still decides: whom it samples (the cohort),
 * which advertisements it counts — leaving one out is claiming that client dropped, so it can try at
 * most the subsets the round's dropout allowance admits (n − minSurvivors), each giving an
 * unpredictable seed it cannot steer to a chosen graph except by that search — and, as in any SecAgg,
 * who it reports as dropped later in the round, with the graph known. Bell et al.'s bounds
 * (params.ts) assume dropouts independent of the graph; an adaptive coordinator's later dropouts are
 * not covered by them, and its choice among the Round-0 subsets is bounded only by their count.
 */
import { equalBytes, fromBase64Url, randomBytes, toBase64Url } from '../crypto/bytes.ts';
import { ed25519Verify } from '../crypto/ed25519.ts';
import { isMaskPrgName, prgFor, DEFAULT_MASK_PRG, type MaskPrgName, type MaskTerm, type PrgImpl } from '../crypto/prg.ts';
import { decodeShareValue, shamirCombine, ShamirError, type ShamirShare } from '../crypto/shamir.ts';
import { x25519PublicKey, x25519SharedSecret } from '../crypto/x25519.ts';
import { SumAccumulator } from './accumulator.ts';
import { packedBytes } from './encoding.ts';
import { SecAggError, SecAggErrorCode as E } from './errors.ts';
import { neighborGraph, type NeighborGraph } from './graph.ts';
import {
  ADVERTISEMENT_DIGEST_BYTES,
  advertisementDigest,
  advertiseTranscript,
  consistencyTranscript,
  derivedGraphSeed,
  encodeMembers,
  pairMaskSeed,
  roundConfigHash,
  roundHash,
  sessionId,
  type RoundConfig,
} from './keys.ts';
import {
  parseClientMessage,
  SHARE_CIPHERTEXT_BYTES,
  type AdvertiseKeys,
  type ConsistencySignature,
  type MaskedInput,
  type SecAggClientMessage,
  type SecAggServerMessage,
  type ShareKeys,
  type Unmask,
} from './messages.ts';
import type { Certificate } from '../identity/certificate.ts';
import type { RevocationList } from '../identity/revocation.ts';

export type SecAggServerPhase = 'idle' | 'advertise' | 'share' | 'collect' | 'consistency' | 'unmask' | 'done' | 'aborted';

export interface SecAggRoundParams {
  /** Graph degree k (n − 1 or more: complete graph). */
  neighbors: number;
  /** Shamir threshold t (a majority of the neighbours). */
  threshold: number;
  /** Modulus 2^bits of the masked values, 1 ≤ bits ≤ 32. */
  bits: number;
  /** Length of the (encoded) input vector. */
  dim: number;
}

export interface SecAggServerOptions {
  jobId: string;
  round: number;
  /** The cohort in protocol order (indices are positions in this list). */
  cohort: readonly string[];
  params: SecAggRoundParams;
  /** The round aborts if fewer clients than this remain in U1, U2 or U3. */
  minSurvivors: number;
  /**
   * 32-byte nonce of this attempt, announced and bound by the config hash; random by default (fresh
   * per attempt). It tells attempts apart; the graph seed is derived from the advertisements.
   */
  nonce?: Uint8Array;
  /** The CA-signed revocation list relayed in ShareKeysRequest (clients that know the CA check it). */
  revocations?: RevocationList;
  /** Registered identity keys; when given, a client must advertise exactly its registered key. */
  identityKeys?: ReadonlyMap<string, Uint8Array>;
  /**
   * The round's mask PRG, announced in AdvertiseRequest and bound by the config hash: a name
   * (default 'aes-256-ctr', node:crypto when present), or an implementation, which also fixes how the
   * server expands it (its `prg` is the name announced; tests use this for the portable paths).
   */
  prg?: MaskPrgName | PrgImpl;
}

export interface SecAggSets {
  cohort: number;
  advertised: number;
  shared: number;
  /** |U3|: the inputs in the sum. */
  included: number;
  signed: number;
  unmasked: number;
}

export type SecAggResult =
  | { status: 'pending'; phase: SecAggServerPhase }
  | {
      status: 'ok';
      /** Σ_{u ∈ U3} x_u mod 2^bits, length dim. */
      sum: Uint32Array;
      /** Ids of the clients whose inputs are in the sum (U3). */
      included: string[];
      sets: SecAggSets;
    }
  | { status: 'aborted'; phase: SecAggServerPhase; reason: string; sets: SecAggSets };

interface Advertised {
  identityKey: Uint8Array;
  certificate?: Certificate;
  cPk: string;
  sPk: string;
  sPkBytes: Uint8Array;
  signature: string;
  /** a_u (keys.ts): what the roster lists for this advertisement. */
  digest: Uint8Array;
}

export class SecAggServer {
  readonly jobId: string;
  readonly round: number;
  readonly cohort: readonly string[];
  readonly params: SecAggRoundParams;
  readonly minSurvivors: number;
  readonly nonce: Uint8Array;
  private readonly configHash: Uint8Array;
  /** Set when Round 0 closes: the derived graph seed, the graph and the round hash (keys.ts). */
  private derived?: { graphSeed: Uint8Array; graph: NeighborGraph; roundHash: Uint8Array };
  /** The `session` field of this attempt's messages. */
  readonly session: string;
  private readonly indexOf = new Map<string, number>();
  private readonly registry?: ReadonlyMap<string, Uint8Array>;
  private readonly revocations?: RevocationList;
  /** The mask PRG this round announces. */
  readonly prgName: MaskPrgName;
  private readonly prg: PrgImpl;

  private state: SecAggServerPhase = 'idle';
  private reason?: string;
  private abortedIn?: SecAggServerPhase;
  /** Who must answer the current phase. */
  private expectedSet = new Set<number>();
  /** Who answered the current phase. */
  private answered = new Set<number>();

  private readonly advertised = new Map<number, Advertised>();
  private u1 = new Set<number>();
  private u2 = new Set<number>();
  private u3 = new Set<number>();
  private u4 = new Set<number>();
  private u5 = new Set<number>();
  /** inbox[receiver] = (sender → ciphertext), Round 1 → Round 2. */
  private readonly inbox = new Map<number, Map<number, string>>();
  private acc?: SumAccumulator;
  private survivorsBitmap?: Uint8Array;
  private readonly signatures = new Map<number, string>();
  private readonly selfShares = new Map<number, ShamirShare[]>();
  private readonly keyShares = new Map<number, ShamirShare[]>();
  private sum?: Uint32Array;

  constructor(opts: SecAggServerOptions) {
    const { cohort, params } = opts;
    const n = cohort.length;
    cohort.forEach((id, i) => this.indexOf.set(id, i));
    if (n < 2 || this.indexOf.size !== n) throw new SecAggError(E.BAD_MESSAGE, 'cohort must list at least 2 distinct clients');
    const degree = Math.min(params.neighbors, n - 1);
    if (!Number.isInteger(params.threshold) || params.threshold <= degree / 2 || params.threshold > degree) {
      throw new SecAggError(E.BAD_MESSAGE, `threshold ${params.threshold} must be a majority of the ${degree} neighbours`);
    }
    if (!Number.isInteger(params.bits) || params.bits < 1 || params.bits > 32) throw new SecAggError(E.BAD_MESSAGE, `bad bits ${params.bits}`);
    if (!Number.isInteger(params.dim) || params.dim < 1) throw new SecAggError(E.BAD_MESSAGE, `bad dim ${params.dim}`);
    if (!Number.isInteger(opts.minSurvivors) || opts.minSurvivors < 1 || opts.minSurvivors > n) {
      throw new SecAggError(E.BAD_MESSAGE, `minSurvivors must be in [1, ${n}]`);
    }
    this.jobId = opts.jobId;
    this.round = opts.round;
    this.cohort = cohort.slice();
    this.params = { ...params };
    this.minSurvivors = opts.minSurvivors;
    this.nonce = opts.nonce ?? randomBytes(32);
    if (this.nonce.length !== 32) throw new SecAggError(E.BAD_MESSAGE, 'nonce must be 32 bytes');
    neighborGraph(n, params.neighbors, new Uint8Array(32)); // the parameters make a graph (throws otherwise)
    this.registry = opts.identityKeys;
    this.revocations = opts.revocations;
    const prg = opts.prg ?? DEFAULT_MASK_PRG;
    if (typeof prg === 'string') {
      if (!isMaskPrgName(prg)) throw new SecAggError(E.BAD_MESSAGE, `unknown mask PRG ${JSON.stringify(prg)}`);
      this.prg = prgFor(prg);
    } else {
      if (!isMaskPrgName(prg.prg)) throw new SecAggError(E.BAD_MESSAGE, `unknown mask PRG ${JSON.stringify(prg.prg)}`);
      this.prg = prg;
    }
    this.prgName = this.prg.prg;
    this.configHash = roundConfigHash(this.roundConfig());
    this.session = sessionId(this.configHash);
  }

  /** The neighbour graph, once Round 0 has closed (derived from the advertisements). */
  get graph(): NeighborGraph | undefined {
    return this.derived?.graph;
  }

  /** The derived graph seed, once Round 0 has closed. */
  get graphSeed(): Uint8Array | undefined {
    return this.derived?.graphSeed;
  }

  get phase(): SecAggServerPhase {
    return this.state;
  }

  get abortReason(): string | undefined {
    return this.reason;
  }

  /** Client ids the current phase still waits for. */
  pending(): string[] {
    return [...this.expectedSet].filter((i) => !this.answered.has(i)).map((i) => this.cohort[i]);
  }

  /** Every client the current phase waits for has answered (the engine may advance early). */
  phaseComplete(): boolean {
    return this.answered.size === this.expectedSet.size;
  }

  /** Opens Round 0: the AdvertiseRequest for every cohort member. */
  start(): Map<string, SecAggServerMessage> {
    if (this.state !== 'idle') throw new SecAggError(E.UNEXPECTED, 'already started');
    const msg: SecAggServerMessage = {
      type: 'secagg_advertise_request',
      jobId: this.jobId,
      round: this.round,
      session: this.session,
      cohort: this.cohort.slice(),
      nonce: toBase64Url(this.nonce),
      neighbors: this.params.neighbors,
      threshold: this.params.threshold,
      bits: this.params.bits,
      dim: this.params.dim,
      minSurvivors: this.minSurvivors,
      prg: this.prgName,
    };
    this.enter('advertise', this.cohort.map((_, i) => i));
    return new Map(this.cohort.map((id) => [id, msg]));
  }

  /** Validates and records one message; throws SecAggError (and records nothing) if it is rejected. */
  receive(clientId: string, raw: SecAggClientMessage | unknown): void {
    const msg = parseClientMessage(raw);
    if (msg.jobId !== this.jobId) throw new SecAggError(E.WRONG_JOB, `message for job ${msg.jobId}, this is ${this.jobId}`);
    if (msg.round !== this.round) throw new SecAggError(E.WRONG_ROUND, `message for round ${msg.round}, this is round ${this.round}`);
    if (msg.session !== this.session) throw new SecAggError(E.WRONG_SESSION, `message from another attempt of round ${this.round}`);
    if (this.state === 'aborted') throw new SecAggError(E.ABORTED, `round aborted: ${this.reason}`);
    const u = this.indexOf.get(clientId);
    if (u === undefined) throw new SecAggError(E.NOT_PARTICIPANT, `${clientId} is not in the cohort`);
    const wanted: Record<string, SecAggServerPhase> = {
      secagg_advertise_keys: 'advertise',
      secagg_share_keys: 'share',
      secagg_masked_input: 'collect',
      secagg_consistency_signature: 'consistency',
      secagg_unmask: 'unmask',
    };
    if (this.state !== wanted[msg.type]) throw new SecAggError(E.UNEXPECTED, `${msg.type} not expected in phase ${this.state}`);
    if (!this.expectedSet.has(u)) throw new SecAggError(E.NOT_PARTICIPANT, `${clientId} is not a participant of phase ${this.state}`);
    if (this.answered.has(u)) throw new SecAggError(E.DUPLICATE, `${clientId} already answered phase ${this.state}`);
    switch (msg.type) {
      case 'secagg_advertise_keys':
        this.onAdvertiseKeys(u, msg);
        break;
      case 'secagg_share_keys':
        this.onShareKeys(u, msg);
        break;
      case 'secagg_masked_input':
        this.onMaskedInput(u, msg);
        break;
      case 'secagg_consistency_signature':
        this.onConsistencySignature(u, msg);
        break;
      case 'secagg_unmask':
        this.onUnmask(u, msg);
        break;
    }
    this.answered.add(u);
  }

  /** Closes the current phase and returns the next phase's messages (empty when done or aborted). */
  advance(): Map<string, SecAggServerMessage> {
    switch (this.state) {
      case 'advertise':
        return this.closeAdvertise();
      case 'share':
        return this.closeShare();
      case 'collect':
        return this.closeCollect();
      case 'consistency':
        return this.closeConsistency();
      case 'unmask':
        this.closeUnmask();
        return new Map();
      default:
        throw new SecAggError(E.UNEXPECTED, `nothing to advance in phase ${this.state}`);
    }
  }

  /** Aborts the round (e.g. the engine gives up); nothing is published. */
  abort(reason: string): void {
    if (this.state === 'done' || this.state === 'aborted') return;
    this.abortedIn = this.state;
    this.state = 'aborted';
    this.reason = reason;
    this.acc = undefined;
    this.selfShares.clear();
    this.keyShares.clear();
  }

  result(): SecAggResult {
    if (this.state === 'done') return { status: 'ok', sum: this.sum!, included: [...this.u3].sort((a, b) => a - b).map((i) => this.cohort[i]), sets: this.sets() };
    if (this.state === 'aborted') return { status: 'aborted', phase: this.abortedIn!, reason: this.reason!, sets: this.sets() };
    return { status: 'pending', phase: this.state };
  }

  sets(): SecAggSets {
    return {
      cohort: this.cohort.length,
      advertised: this.u1.size,
      shared: this.u2.size,
      included: this.u3.size,
      signed: this.u4.size,
      unmasked: this.u5.size,
    };
  }

  // ---- Round 0: AdvertiseKeys -----------------------------------------------------------------

  private onAdvertiseKeys(u: number, msg: AdvertiseKeys): void {
    const id = this.cohort[u];
    const identityKey = decode(msg.identityKey, 'identityKey');
    if (this.registry) {
      const registered = this.registry.get(id);
      if (!registered || !equalBytes(registered, identityKey)) throw new SecAggError(E.UNKNOWN_IDENTITY, `${id}: identity key is not the registered one`);
    }
    const cPk = decode(msg.cPk, 'cPk');
    const sPkBytes = decode(msg.sPk, 'sPk');
    if (equalBytes(cPk, sPkBytes)) throw new SecAggError(E.BAD_MESSAGE, `${id}: the two public keys must differ`);
    const signature = decode(msg.signature, 'signature');
    if (!ed25519Verify(identityKey, advertiseTranscript(this.configHash, id, cPk, sPkBytes), signature)) {
      throw new SecAggError(E.BAD_SIGNATURE, `${id}: advertised keys are not signed by its identity key`);
    }
    const digest = advertisementDigest(this.configHash, id, identityKey, cPk, sPkBytes, signature);
    this.advertised.set(u, { identityKey, cPk: msg.cPk, sPk: msg.sPk, sPkBytes, signature: msg.signature, digest, ...(msg.certificate ? { certificate: msg.certificate } : {}) });
  }

  private closeAdvertise(): Map<string, SecAggServerMessage> {
    // The roster: everyone whose advertisement was accepted, before pruning (keys.ts).
    const listed = [...this.answered].sort((a, b) => a - b);
    const advertisedBitmap = encodeMembers(this.cohort.length, listed);
    const digests = new Uint8Array(listed.length * ADVERTISEMENT_DIGEST_BYTES);
    listed.forEach((u, i) => digests.set(this.advertised.get(u)!.digest, i * ADVERTISEMENT_DIGEST_BYTES));
    const graphSeed = derivedGraphSeed(this.configHash, advertisedBitmap, digests);
    this.derived = { graphSeed, graph: neighborGraph(this.cohort.length, this.params.neighbors, graphSeed), roundHash: roundHash(this.configHash, graphSeed) };
    const roster = { advertised: toBase64Url(advertisedBitmap), digests: toBase64Url(digests), ...(this.revocations ? { revocations: this.revocations } : {}) };
    this.u1 = this.prune(new Set(this.answered));
    if (this.u1.size < this.minSurvivors) return this.fail(`only ${this.u1.size} clients advertised keys; the round needs ${this.minSurvivors}`);
    const out = new Map<string, SecAggServerMessage>();
    for (const u of this.u1) {
      const peers = this.liveNeighbors(u, this.u1).map((v) => {
        const a = this.advertised.get(v)!;
        return { clientId: this.cohort[v], identityKey: toBase64Url(a.identityKey), cPk: a.cPk, sPk: a.sPk, signature: a.signature, ...(a.certificate ? { certificate: a.certificate } : {}) };
      });
      out.set(this.cohort[u], { type: 'secagg_share_keys_request', jobId: this.jobId, round: this.round, session: this.session, ...roster, peers });
    }
    this.enter('share', this.u1);
    return out;
  }

  // ---- Round 1: ShareKeys ---------------------------------------------------------------------

  private onShareKeys(u: number, msg: ShareKeys): void {
    const id = this.cohort[u];
    const expected = new Set(this.liveNeighbors(u, this.u1));
    const got = new Map<number, string>();
    for (const s of msg.shares) {
      const v = this.indexOf.get(s.to);
      if (v === undefined || !expected.has(v)) throw new SecAggError(E.BAD_MESSAGE, `${id}: share addressed to ${s.to}, not a neighbour in the round`);
      if (got.has(v)) throw new SecAggError(E.BAD_MESSAGE, `${id}: two shares for ${s.to}`);
      if (decode(s.ciphertext, 'ciphertext').length !== SHARE_CIPHERTEXT_BYTES) throw new SecAggError(E.BAD_MESSAGE, `${id}: bad ciphertext size`);
      got.set(v, s.ciphertext);
    }
    if (got.size !== expected.size) throw new SecAggError(E.BAD_MESSAGE, `${id}: ${got.size} shares for ${expected.size} neighbours`);
    for (const [v, ct] of got) {
      let box = this.inbox.get(v);
      if (!box) this.inbox.set(v, (box = new Map()));
      box.set(u, ct);
    }
  }

  private closeShare(): Map<string, SecAggServerMessage> {
    this.u2 = this.prune(new Set(this.answered));
    if (this.u2.size < this.minSurvivors) return this.fail(`only ${this.u2.size} clients shared keys; the round needs ${this.minSurvivors}`);
    const out = new Map<string, SecAggServerMessage>();
    for (const u of this.u2) {
      const box = this.inbox.get(u)!;
      const shares = this.liveNeighbors(u, this.u2).map((v) => ({ from: this.cohort[v], ciphertext: box.get(v)! }));
      out.set(this.cohort[u], { type: 'secagg_masked_input_request', jobId: this.jobId, round: this.round, session: this.session, shares });
    }
    this.inbox.clear();
    this.acc = new SumAccumulator(this.params.dim, this.params.bits);
    this.enter('collect', this.u2);
    return out;
  }

  // ---- Round 2: MaskedInputCollection ---------------------------------------------------------

  private onMaskedInput(u: number, msg: MaskedInput): void {
    const want = packedBytes(this.params.dim, this.params.bits);
    if (msg.payload.length !== want) {
      throw new SecAggError(E.BAD_MESSAGE, `${this.cohort[u]}: masked input has ${msg.payload.length} bytes, expected ${want}`);
    }
    this.acc!.addPacked(msg.payload);
  }

  private closeCollect(): Map<string, SecAggServerMessage> {
    this.u3 = new Set(this.answered);
    if (this.u3.size < this.minSurvivors) return this.fail(`only ${this.u3.size} masked inputs arrived; the round needs ${this.minSurvivors}`);
    this.survivorsBitmap = encodeMembers(this.cohort.length, this.u3);
    const msg: SecAggServerMessage = {
      type: 'secagg_consistency_request',
      jobId: this.jobId,
      round: this.round,
      session: this.session,
      survivors: toBase64Url(this.survivorsBitmap),
    };
    this.enter('consistency', this.u3);
    return new Map([...this.u3].map((u) => [this.cohort[u], msg]));
  }

  // ---- Round 3: ConsistencyCheck --------------------------------------------------------------

  private onConsistencySignature(u: number, msg: ConsistencySignature): void {
    const a = this.advertised.get(u)!;
    if (!ed25519Verify(a.identityKey, consistencyTranscript(this.derived!.roundHash, this.survivorsBitmap!), decode(msg.signature, 'signature'))) {
      throw new SecAggError(E.BAD_SIGNATURE, `${this.cohort[u]}: bad signature on the survivor set`);
    }
    this.signatures.set(u, msg.signature);
  }

  private closeConsistency(): Map<string, SecAggServerMessage> {
    this.u4 = new Set(this.answered);
    const t = this.params.threshold;
    // A client answers Unmask only if ≥ t of its neighbours signed U3.
    const responders = new Set([...this.u4].filter((u) => this.liveNeighbors(u, this.u4).length >= t));
    // Feasibility, before anyone reveals anything: every needed secret must have t answering holders.
    for (const v of this.u3) {
      const holders = this.liveNeighbors(v, responders).filter((w) => this.u2.has(w)).length;
      if (holders < t) return this.fail(`the self mask of ${this.cohort[v]} cannot be rebuilt: ${holders} of its neighbours can answer, threshold ${t}`);
    }
    for (const v of this.droppedWithIncludedNeighbors()) {
      const holders = this.liveNeighbors(v, responders).length;
      if (holders < t) return this.fail(`the mask key of dropped ${this.cohort[v]} cannot be rebuilt: ${holders} of its neighbours can answer, threshold ${t}`);
    }
    const out = new Map<string, SecAggServerMessage>();
    for (const u of responders) {
      const signatures = this.liveNeighbors(u, this.u4).map((v) => ({ clientId: this.cohort[v], signature: this.signatures.get(v)! }));
      out.set(this.cohort[u], { type: 'secagg_unmask_request', jobId: this.jobId, round: this.round, session: this.session, signatures });
    }
    this.enter('unmask', responders);
    return out;
  }

  // ---- Round 4: Unmasking ---------------------------------------------------------------------

  private onUnmask(u: number, msg: Unmask): void {
    const id = this.cohort[u];
    const held = this.liveNeighbors(u, this.u2);
    const wantSelf = new Set(held.filter((v) => this.u3.has(v)));
    const wantKey = new Set(held.filter((v) => !this.u3.has(v)));
    const parse = (list: { of: string; share: string }[], want: Set<number>, kind: string): [number, bigint][] => {
      const out = new Map<number, bigint>();
      for (const s of list) {
        const v = this.indexOf.get(s.of);
        if (v === undefined || !want.has(v) || out.has(v)) throw new SecAggError(E.BAD_MESSAGE, `${id}: unexpected ${kind} share of ${s.of}`);
        let y: bigint;
        try {
          y = decodeShareValue(decode(s.share, 'share'));
        } catch {
          throw new SecAggError(E.BAD_MESSAGE, `${id}: malformed ${kind} share of ${s.of}`);
        }
        out.set(v, y);
      }
      if (out.size !== want.size) throw new SecAggError(E.BAD_MESSAGE, `${id}: ${out.size} ${kind} shares, expected ${want.size}`);
      return [...out];
    };
    const self = parse(msg.selfShares, wantSelf, 'self-mask');
    const key = parse(msg.keyShares, wantKey, 'key');
    const x = u + 1;
    for (const [v, y] of self) push(this.selfShares, v, { x, y });
    for (const [v, y] of key) push(this.keyShares, v, { x, y });
  }

  private closeUnmask(): void {
    this.u5 = new Set(this.answered);
    const { threshold: t } = this.params;
    const terms: MaskTerm[] = [];
    try {
      // Self masks: acc −= PRG(b_v) for every v ∈ U3.
      for (const v of this.u3) {
        const shares = this.selfShares.get(v) ?? [];
        if (shares.length < t) return void this.fail(`only ${shares.length} shares of ${this.cohort[v]}'s self mask arrived; threshold ${t}`);
        terms.push({ seed: shamirCombine(shares, t, 32), sign: -1 });
      }
      // Pairwise masks of dropped v with included neighbours w: w added Δ_{w,v}·PRG(s_{w,v}); remove it.
      for (const v of this.droppedWithIncludedNeighbors()) {
        const shares = this.keyShares.get(v) ?? [];
        if (shares.length < t) return void this.fail(`only ${shares.length} shares of ${this.cohort[v]}'s mask key arrived; threshold ${t}`);
        const a = this.advertised.get(v)!;
        const sk = shamirCombine(shares, t, 32);
        if (!equalBytes(x25519PublicKey(sk), a.sPkBytes)) return void this.fail(`the shares of ${this.cohort[v]}'s mask key do not match its advertised key`);
        const own = { secretKey: sk, publicKey: a.sPkBytes };
        for (const w of this.liveNeighbors(v, this.u3)) {
          const seed = pairMaskSeed(x25519SharedSecret(own, this.advertised.get(w)!.sPkBytes), this.derived!.roundHash, w, v);
          terms.push({ seed, sign: w < v ? -1 : 1 });
        }
      }
    } catch (e) {
      if (e instanceof ShamirError) return void this.fail(`inconsistent shares: ${e.message}`);
      throw e;
    }
    // Survivors' self masks and dropped clients' pairwise masks in one chunk-major pass.
    this.acc!.addMasks(terms, this.prg);
    this.sum = this.acc!.finish();
    this.acc = undefined;
    this.selfShares.clear();
    this.keyShares.clear();
    this.state = 'done';
    this.expectedSet = new Set();
    this.answered = new Set();
  }

  // ---- helpers --------------------------------------------------------------------------------

  private roundConfig(): RoundConfig {
    return {
      jobId: this.jobId,
      round: this.round,
      cohort: this.cohort,
      nonce: this.nonce,
      neighbors: this.params.neighbors,
      threshold: this.params.threshold,
      bits: this.params.bits,
      dim: this.params.dim,
      minSurvivors: this.minSurvivors,
      prg: this.prgName,
    };
  }

  private enter(phase: SecAggServerPhase, expected: Iterable<number>): void {
    this.state = phase;
    this.expectedSet = new Set(expected);
    this.answered = new Set();
  }

  private fail(reason: string): Map<string, SecAggServerMessage> {
    this.abort(reason);
    return new Map();
  }

  /** u's neighbours that are in `set`, ascending. */
  private liveNeighbors(u: number, set: ReadonlySet<number>): number[] {
    const out: number[] = [];
    for (const v of this.derived!.graph.neighbors(u)) if (set.has(v)) out.push(v);
    return out;
  }

  /** Removes, until none is left, members with fewer than t neighbours in the set. */
  private prune(set: Set<number>): Set<number> {
    const t = this.params.threshold;
    for (let changed = true; changed; ) {
      changed = false;
      for (const u of set) {
        if (this.liveNeighbors(u, set).length < t) {
          set.delete(u);
          changed = true;
        }
      }
    }
    return set;
  }

  /** U2 \ U3 members with at least one neighbour in U3 (their pairwise masks are in the sum). */
  private droppedWithIncludedNeighbors(): number[] {
    return [...this.u2].filter((v) => !this.u3.has(v) && this.liveNeighbors(v, this.u3).length > 0);
  }
}

function decode(text: string, what: string): Uint8Array {
  try {
    return fromBase64Url(text);
  } catch {
    throw new SecAggError(E.BAD_MESSAGE, `${what} is not base64url`);
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
