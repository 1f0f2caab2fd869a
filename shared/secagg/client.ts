/**
 * The client side of secure aggregation: Bonawitz et al., "Practical Secure Aggregation for
 * Privacy-Preserving Machine Learning", CCS 2017, §4 (Fig. 4, with the active-adversary additions:
 * signed keys and the consistency check), on the SecAgg+ neighbour graph of Bell et al. CCS 2020,
 * §3: keys, shares and masks are exchanged with the k graph neighbours only, threshold t.
 *
 * A pure state machine: `handle(serverMessage)` returns the messages to send back; `setInput`
 * supplies the encoded update (values mod 2^b, encoding.ts). No I/O, no timers.
 *
 *   init ──AdvertiseRequest──▶ advertised ──ShareKeysRequest──▶ shared ──MaskedInputRequest + input──▶
 *   masked ──ConsistencyRequest──▶ signed ──UnmaskRequest──▶ done          (any violation ──▶ aborted)
 *
 * Rejection policy: a message for another job/round (a replay), a malformed message or one that is
 * not expected now is rejected with a SecAggError and leaves the state unchanged. A message that
 * proves misbehaviour or would weaken privacy — a bad signature, a share that does not decrypt, a
 * survivor set that is too small or inconsistent — aborts the client (it stops answering, which the
 * server sees as a dropout) and throws.
 *
 * Invariant (Bonawitz §4, Round 4): for every peer, the client reveals at most one of its two
 * shares — b_v's if v's masked input is in the sum, s_v^SK's if not — and it answers one Unmask
 * request per round only. `revealed` records what was disclosed; a second, different disclosure
 * throws before anything is returned.
 */
import { aeadOpen, aeadSeal } from '../crypto/aead.ts';
import { equalBytes, fromBase64Url, randomBytes, toBase64Url, wipe } from '../crypto/bytes.ts';
import { ed25519Sign, ed25519Verify, type Ed25519KeyPair } from '../crypto/ed25519.ts';
import { addMasks, prgFor, type MaskTerm, type PrgImpl } from '../crypto/prg.ts';
import { encodeShareValue, shamirSplit } from '../crypto/shamir.ts';
import { x25519KeyPair, x25519SharedSecret, type X25519KeyPair } from '../crypto/x25519.ts';
import { packBits } from './encoding.ts';
import { SecAggError, SecAggErrorCode as E } from './errors.ts';
import { neighborGraph, type NeighborGraph } from './graph.ts';
import { failureBounds } from './params.ts';
import {
  ADVERTISEMENT_DIGEST_BYTES,
  advertisementDigest,
  advertiseTranscript,
  consistencyTranscript,
  decodeMembers,
  derivedGraphSeed,
  roundHash,
  decodeSharePlaintext,
  encodeSharePlaintext,
  pairMaskSeed,
  roundConfigHash,
  roundPrg,
  sessionId,
  shareEncryptionKey,
  type RoundConfig,
} from './keys.ts';
import {
  parseServerMessage,
  type AdvertiseRequest,
  type ConsistencyRequest,
  type MaskedInputRequest,
  type SecAggClientMessage,
  type SecAggServerMessage,
  type ShareKeysRequest,
  type UnmaskRequest,
} from './messages.ts';
import type { Certificate } from '../identity/certificate.ts';

export type SecAggClientPhase = 'init' | 'advertised' | 'shared' | 'masked' | 'signed' | 'done' | 'aborted';

export interface SecAggClientOptions {
  clientId: string;
  jobId: string;
  round: number;
  /** The client's long-term Ed25519 identity (registered with the coordinator). */
  identity: Ed25519KeyPair;
  /**
   * Registered identity keys of other clients, when the client has them. Without an entry the client
   * trusts the identity key the server relays (PKI through an honest-but-curious server).
   */
  trustedIdentityKeys?: ReadonlyMap<string, Uint8Array>;
  /** This client's certificate from the federation CA: sent with its advertised keys. */
  certificate?: Certificate;
  /**
   * Checks each neighbour's identity before any share is made for it (e.g. its certificate against the
   * CA key this client was configured with): a reason to refuse aborts the round (UNKNOWN_IDENTITY).
   */
  checkPeer?: (peer: { clientId: string; identityKey: Uint8Array; certificate?: Certificate }) => string | undefined;
  /**
   * Takes the revocation list ShareKeysRequest relays (or its absence) before any neighbour is checked
   * (identity/revocation.ts RevocationView.accept): a reason to refuse aborts the round (UNSAFE_REQUEST).
   */
  acceptRevocations?: (list: unknown) => string | undefined;
  /** Privacy floor: refuse rounds announcing, or unmasking, fewer survivors than this. */
  minSurvivorsFloor?: number;
  /**
   * Refuse graphs weaker than this policy: with the announced n, k, t and n − minSurvivors tolerated
   * dropouts, the security failure bound of params.ts for ⌊corruptRate·n⌋ corrupt clients must be
   * ≤ 2^-securityBits (default 40).
   */
  securityPolicy?: { corruptRate: number; securityBits?: number };
  /**
   * The mask PRG is the one the round announces (AdvertiseRequest `prg`, default 'aes-256-ctr'),
   * expanded with node:crypto when present. An implementation given here replaces that for rounds
   * announcing its PRG (`prg.prg`); other rounds keep the default implementation.
   */
  prg?: PrgImpl;
}

interface Peer {
  index: number;
  identityKey: Uint8Array;
  cPk: Uint8Array;
  sPk: Uint8Array;
  /** KA.agree(c_u^SK, c_v^PK): computed for ShareKeys, reused to open v's share in Round 2. */
  cShared?: Uint8Array;
}

interface Round {
  config: RoundConfig;
  configHash: Uint8Array;
  session: string;
  index: number;
  indexOf: Map<string, number>;
  /** a_u of this client's own advertisement (keys.ts), to find in the roster. */
  ownDigest?: Uint8Array;
  /** From ShareKeysRequest on: the graph derived from the roster, and the round hash rh. */
  graph?: NeighborGraph;
  roundHash?: Uint8Array;
}

export class SecAggClient {
  readonly clientId: string;
  readonly jobId: string;
  readonly round: number;
  private readonly identity: Ed25519KeyPair;
  private readonly trusted?: ReadonlyMap<string, Uint8Array>;
  private readonly floor: number;
  private readonly policy?: { corruptRate: number; securityBits?: number };
  private readonly prgOverride?: PrgImpl;
  /** The announced mask PRG's implementation (after AdvertiseRequest). */
  private prg?: PrgImpl;

  private state: SecAggClientPhase = 'init';
  private reason?: string;
  private cfg?: Round;
  private cKeys?: X25519KeyPair;
  private sKeys?: X25519KeyPair;
  private selfSeed?: Uint8Array;
  /** Neighbours that advertised (U1 ∩ N(u)), by id. */
  private readonly peers = new Map<string, Peer>();
  /** Shares held for neighbours that sent them (U2 ∩ N(u)), by id. */
  private readonly held = new Map<string, { selfMaskShare: bigint; keyShare: bigint }>();
  private pairSeeds: MaskTerm[] = [];
  private input?: Uint32Array;
  private maskRequested = false;
  private survivorsBitmap?: Uint8Array;
  private survivors?: Set<number>;
  private readonly disclosed = new Map<string, 'self' | 'key'>();

  constructor(private readonly opts: SecAggClientOptions) {
    this.clientId = opts.clientId;
    this.jobId = opts.jobId;
    this.round = opts.round;
    this.identity = opts.identity;
    this.trusted = opts.trustedIdentityKeys;
    this.floor = opts.minSurvivorsFloor ?? 1;
    this.policy = opts.securityPolicy;
    this.prgOverride = opts.prg;
  }

  get phase(): SecAggClientPhase {
    return this.state;
  }

  get abortReason(): string | undefined {
    return this.reason;
  }

  /** For each peer, which of its shares this client disclosed ('self' = b_v, 'key' = s_v^SK). */
  get revealed(): ReadonlyMap<string, 'self' | 'key'> {
    return this.disclosed;
  }

  /** The implementation of the round's mask PRG, e.g. 'aes-256-ctr/node' (after AdvertiseRequest). */
  get maskPrg(): string | undefined {
    return this.prg?.name;
  }

  /** The round's neighbour ids (once ShareKeysRequest has fixed the graph). */
  get neighbors(): string[] {
    if (!this.cfg?.graph) return [];
    return [...this.cfg.graph.neighbors(this.cfg.index)].map((i) => this.cfg!.config.cohort[i]);
  }

  /** Processes one server message; returns the replies (zero or one message). */
  handle(raw: SecAggServerMessage | unknown): SecAggClientMessage[] {
    const msg = parseServerMessage(raw);
    if (msg.jobId !== this.jobId) throw new SecAggError(E.WRONG_JOB, `message for job ${msg.jobId}, this is ${this.jobId}`);
    if (msg.round !== this.round) throw new SecAggError(E.WRONG_ROUND, `message for round ${msg.round}, this is round ${this.round}`);
    if (this.cfg && msg.session !== this.cfg.session) throw new SecAggError(E.WRONG_SESSION, `message from another attempt of round ${this.round}`);
    if (this.state === 'aborted') throw new SecAggError(E.ABORTED, `client aborted: ${this.reason}`);
    switch (msg.type) {
      case 'secagg_advertise_request':
        this.expect('init', msg.type);
        return this.guard(() => this.onAdvertiseRequest(msg));
      case 'secagg_share_keys_request':
        this.expect('advertised', msg.type);
        return this.guard(() => this.onShareKeysRequest(msg));
      case 'secagg_masked_input_request':
        this.expect('shared', msg.type);
        if (this.maskRequested) throw new SecAggError(E.UNEXPECTED, 'masked input already requested');
        return this.guard(() => this.onMaskedInputRequest(msg));
      case 'secagg_consistency_request':
        this.expect('masked', msg.type);
        return this.guard(() => this.onConsistencyRequest(msg));
      case 'secagg_unmask_request':
        this.expect('signed', msg.type);
        return this.guard(() => this.onUnmaskRequest(msg));
    }
  }

  /**
   * Supplies the encoded update: `bits`-bit values (length `dim`) as announced in AdvertiseRequest.
   * May come before or after MaskedInputRequest; returns the masked input once both are there.
   */
  setInput(values: Uint32Array): SecAggClientMessage[] {
    if (this.state === 'aborted') throw new SecAggError(E.ABORTED, `client aborted: ${this.reason}`);
    if (this.input || (this.state !== 'init' && this.state !== 'advertised' && this.state !== 'shared')) {
      throw new SecAggError(E.UNEXPECTED, 'input already set');
    }
    if (this.cfg) this.checkInput(values);
    this.input = values.slice();
    return this.state === 'shared' && this.maskRequested ? this.guard(() => [this.maskedInput()]) : [];
  }

  /** Stops the client (e.g. on a timeout) and wipes its secrets. */
  abort(reason: string): void {
    if (this.state === 'aborted' || this.state === 'done') return;
    this.state = 'aborted';
    this.reason = reason;
    this.wipeSecrets();
  }

  // ---- phases ---------------------------------------------------------------------------------

  /** Round 0 AdvertiseKeys: fresh X25519 pairs (c for share encryption, s for masks), signed. */
  private onAdvertiseRequest(msg: AdvertiseRequest): SecAggClientMessage[] {
    const n = msg.cohort.length;
    const indexOf = new Map<string, number>();
    msg.cohort.forEach((id, i) => indexOf.set(id, i));
    if (indexOf.size !== n) throw this.fail(E.BAD_MESSAGE, 'cohort lists a client twice');
    const index = indexOf.get(this.clientId);
    if (index === undefined) throw this.fail(E.NOT_PARTICIPANT, 'this client is not in the cohort');
    const degree = Math.min(msg.neighbors, n - 1);
    if (msg.threshold <= degree / 2 || msg.threshold > degree) {
      throw this.fail(E.UNSAFE_REQUEST, `threshold ${msg.threshold} must be a majority of the ${degree} neighbours`);
    }
    if (msg.minSurvivors > n || msg.minSurvivors < this.floor) {
      throw this.fail(E.UNSAFE_REQUEST, `round accepts ${msg.minSurvivors} survivors; this client requires at least ${this.floor}`);
    }
    if (this.policy) {
      const bits = this.policy.securityBits ?? 40;
      const corrupt = Math.floor(this.policy.corruptRate * n + 1e-9);
      const bound = failureBounds(n, msg.neighbors, msg.threshold, n - msg.minSurvivors, corrupt).log2Security;
      if (bound > -bits) {
        throw this.fail(E.UNSAFE_REQUEST, `graph (k=${msg.neighbors}, t=${msg.threshold}) has security failure 2^${bound.toFixed(1)} > 2^-${bits} for ${corrupt} corrupt of ${n}`);
      }
    }
    const nonce = this.decode(msg.nonce, 'nonce');
    try {
      neighborGraph(n, msg.neighbors, new Uint8Array(32)); // the parameters make a graph; its seed comes later
    } catch (e) {
      throw this.fail(E.BAD_MESSAGE, `bad graph parameters: ${(e as Error).message}`);
    }
    const config: RoundConfig = {
      jobId: msg.jobId,
      round: msg.round,
      cohort: msg.cohort.slice(),
      nonce,
      neighbors: msg.neighbors,
      threshold: msg.threshold,
      bits: msg.bits,
      dim: msg.dim,
      minSurvivors: msg.minSurvivors,
      prg: roundPrg(msg),
    };
    const configHash = roundConfigHash(config);
    const session = sessionId(configHash);
    if (msg.session !== session) throw this.fail(E.BAD_MESSAGE, 'session does not match the announced configuration');
    this.cfg = { config, configHash, session, index, indexOf };
    this.prg = this.prgOverride?.prg === config.prg ? this.prgOverride : prgFor(config.prg!);
    if (this.input) this.checkInput(this.input);
    this.cKeys = x25519KeyPair();
    this.sKeys = x25519KeyPair();
    const signature = ed25519Sign(this.identity, advertiseTranscript(this.cfg.configHash, this.clientId, this.cKeys.publicKey, this.sKeys.publicKey));
    this.cfg.ownDigest = advertisementDigest(configHash, this.clientId, this.identity.publicKey, this.cKeys.publicKey, this.sKeys.publicKey, signature);
    this.state = 'advertised';
    return [
      {
        type: 'secagg_advertise_keys',
        jobId: this.jobId,
        round: this.round,
        session: this.cfg.session,
        identityKey: toBase64Url(this.identity.publicKey),
        cPk: toBase64Url(this.cKeys.publicKey),
        sPk: toBase64Url(this.sKeys.publicKey),
        signature: toBase64Url(signature),
        ...(this.opts.certificate ? { certificate: this.opts.certificate } : {}),
      },
    ];
  }

  /**
   * Round 1 ShareKeys: derive the graph from the roster (keys.ts: this client's own advertisement must
   * be in it, unchanged), verify neighbours' signed keys against it, t-of-k share s_u^SK and b_u,
   * encrypt per neighbour.
   */
  private onShareKeysRequest(msg: ShareKeysRequest): SecAggClientMessage[] {
    const r = this.cfg!;
    const n = r.config.cohort.length;
    const advertisedBitmap = this.decode(msg.advertised, 'advertised');
    const digests = this.decode(msg.digests, 'digests');
    let listed: number[];
    try {
      listed = [...decodeMembers(n, advertisedBitmap)].sort((a, b) => a - b);
    } catch (e) {
      throw this.fail(E.BAD_MESSAGE, `advertised: ${(e as Error).message}`);
    }
    if (digests.length !== listed.length * ADVERTISEMENT_DIGEST_BYTES) {
      throw this.fail(E.BAD_MESSAGE, `${digests.length} bytes of digests for ${listed.length} advertisements`);
    }
    const digestOf = (index: number): Uint8Array | undefined => {
      const at = listed.indexOf(index);
      return at < 0 ? undefined : digests.subarray(at * ADVERTISEMENT_DIGEST_BYTES, (at + 1) * ADVERTISEMENT_DIGEST_BYTES);
    };
    const refused = this.opts.acceptRevocations?.(msg.revocations);
    if (refused !== undefined) throw this.fail(E.UNSAFE_REQUEST, refused);
    const own = digestOf(r.index);
    if (!own || !equalBytes(own, r.ownDigest!)) throw this.fail(E.BAD_ROSTER, "the advertisement list omits or alters this client's own");
    const graphSeed = derivedGraphSeed(r.configHash, advertisedBitmap, digests);
    r.graph = neighborGraph(n, r.config.neighbors, graphSeed);
    r.roundHash = roundHash(r.configHash, graphSeed);
    const seenKeys = [this.cKeys!.publicKey, this.sKeys!.publicKey];
    for (const p of msg.peers) {
      const index = r.indexOf.get(p.clientId);
      if (index === undefined || !r.graph.isNeighbor(r.index, index)) throw this.fail(E.BAD_MESSAGE, `${p.clientId} is not a neighbour`);
      if (this.peers.has(p.clientId)) throw this.fail(E.BAD_MESSAGE, `${p.clientId} listed twice`);
      const identityKey = this.decode(p.identityKey, 'identityKey');
      const trusted = this.trusted?.get(p.clientId);
      if (trusted && !equalBytes(trusted, identityKey)) throw this.fail(E.UNKNOWN_IDENTITY, `${p.clientId}: identity key is not the registered one`);
      const cPk = this.decode(p.cPk, 'cPk');
      const sPk = this.decode(p.sPk, 'sPk');
      const sig = this.decode(p.signature, 'signature');
      if (!ed25519Verify(identityKey, advertiseTranscript(r.configHash, p.clientId, cPk, sPk), sig)) {
        throw this.fail(E.BAD_SIGNATURE, `${p.clientId}: advertised keys are not signed by its identity key`);
      }
      const listedDigest = digestOf(index);
      if (!listedDigest || !equalBytes(listedDigest, advertisementDigest(r.configHash, p.clientId, identityKey, cPk, sPk, sig))) {
        throw this.fail(E.BAD_ROSTER, `${p.clientId}: its advertisement is not the one the list the graph was derived from holds`);
      }
      const refusal = this.opts.checkPeer?.({ clientId: p.clientId, identityKey, ...(p.certificate ? { certificate: p.certificate } : {}) });
      if (refusal !== undefined) throw this.fail(E.UNKNOWN_IDENTITY, `${p.clientId}: ${refusal}`);
      // Bonawitz §4 Round 1: all advertised public keys must be distinct.
      for (const k of [cPk, sPk]) {
        if (seenKeys.some((s) => equalBytes(s, k))) throw this.fail(E.BAD_MESSAGE, `${p.clientId}: repeated public key`);
        seenKeys.push(k);
      }
      this.peers.set(p.clientId, { index, identityKey, cPk, sPk });
    }
    const t = r.config.threshold;
    if (this.peers.size < t) throw this.fail(E.UNSAFE_REQUEST, `only ${this.peers.size} neighbours advertised keys; threshold is ${t}`);
    this.selfSeed = randomBytes(32);
    const holders = [...this.peers.entries()].sort((a, b) => a[1].index - b[1].index);
    const xs = holders.map(([, p]) => p.index + 1);
    const selfShares = shamirSplit(this.selfSeed, xs, t);
    const keyShares = shamirSplit(this.sKeys!.secretKey, xs, t);
    const shares = holders.map(([id, p], i) => {
      p.cShared = x25519SharedSecret(this.cKeys!, p.cPk);
      const key = shareEncryptionKey(p.cShared, r.roundHash!, r.index, p.index);
      const plaintext = encodeSharePlaintext({ sender: r.index, receiver: p.index, selfMaskShare: selfShares[i].y, keyShare: keyShares[i].y });
      return { to: id, ciphertext: toBase64Url(aeadSeal(key, plaintext)) };
    });
    this.state = 'shared';
    return [{ type: 'secagg_share_keys', jobId: this.jobId, round: this.round, session: this.cfg!.session, shares }];
  }

  /** Round 2 MaskedInputCollection: decrypt the shares received, derive pairwise seeds, mask. */
  private onMaskedInputRequest(msg: MaskedInputRequest): SecAggClientMessage[] {
    const r = this.cfg!;
    for (const s of msg.shares) {
      const peer = this.peers.get(s.from);
      if (!peer) throw this.fail(E.BAD_MESSAGE, `share from ${s.from}, who is not an advertised neighbour`);
      if (this.held.has(s.from)) throw this.fail(E.BAD_MESSAGE, `two shares from ${s.from}`);
      const key = shareEncryptionKey(peer.cShared ?? x25519SharedSecret(this.cKeys!, peer.cPk), r.roundHash!, peer.index, r.index);
      let plain;
      try {
        plain = decodeSharePlaintext(aeadOpen(key, this.decode(s.ciphertext, 'ciphertext')));
      } catch (e) {
        if (e instanceof SecAggError) throw e;
        throw this.fail(E.BAD_CIPHERTEXT, `share from ${s.from} does not decrypt: ${(e as Error).message}`);
      }
      if (plain.sender !== peer.index || plain.receiver !== r.index) throw this.fail(E.BAD_CIPHERTEXT, `share from ${s.from} is addressed wrongly`);
      this.held.set(s.from, { selfMaskShare: plain.selfMaskShare, keyShare: plain.keyShare });
    }
    if (this.held.size < r.config.threshold) {
      throw this.fail(E.UNSAFE_REQUEST, `only ${this.held.size} neighbours are still in the round; threshold is ${r.config.threshold}`);
    }
    // Bonawitz §4 Round 2: p_{u,v} = Δ_{u,v} · PRG(s_{u,v}), Δ = +1 if u < v else −1, for v ∈ U2 ∩ N(u).
    this.pairSeeds = [...this.held.keys()].map((id) => {
      const peer = this.peers.get(id)!;
      const seed = pairMaskSeed(x25519SharedSecret(this.sKeys!, peer.sPk), r.roundHash!, r.index, peer.index);
      return { seed, sign: r.index < peer.index ? 1 : -1 };
    });
    this.maskRequested = true;
    return this.input ? [this.maskedInput()] : [];
  }

  /** y_u = x_u + PRG(b_u) + Σ_v Δ_{u,v} PRG(s_{u,v})  (mod 2^b), b-bit packed. */
  private maskedInput(): SecAggClientMessage {
    const { bits } = this.cfg!.config;
    const y = this.input!;
    addMasks(y, [{ seed: this.selfSeed!, sign: 1 }, ...this.pairSeeds], bits, this.prg!);
    const payload = packBits(y, bits);
    y.fill(0);
    this.input = undefined;
    this.state = 'masked';
    return { type: 'secagg_masked_input', jobId: this.jobId, round: this.round, session: this.cfg!.session, payload };
  }

  /** Round 3 ConsistencyCheck: check U3, sign it. */
  private onConsistencyRequest(msg: ConsistencyRequest): SecAggClientMessage[] {
    const r = this.cfg!;
    const n = r.config.cohort.length;
    const bitmap = this.decode(msg.survivors, 'survivors');
    let u3: Set<number>;
    try {
      u3 = decodeMembers(n, bitmap);
    } catch (e) {
      throw this.fail(E.BAD_MESSAGE, (e as Error).message);
    }
    if (!u3.has(r.index)) throw this.fail(E.UNSAFE_REQUEST, 'survivor set omits this client, whose input was sent');
    for (const j of r.graph!.neighbors(r.index)) {
      if (u3.has(j) && !this.held.has(r.config.cohort[j])) {
        throw this.fail(E.UNSAFE_REQUEST, `survivor set includes neighbour ${r.config.cohort[j]}, who never shared keys with this client`);
      }
    }
    const minimum = Math.max(r.config.minSurvivors, this.floor);
    if (u3.size < minimum) throw this.fail(E.UNSAFE_REQUEST, `survivor set has ${u3.size} clients; at least ${minimum} required`);
    this.survivors = u3;
    this.survivorsBitmap = bitmap;
    const signature = ed25519Sign(this.identity, consistencyTranscript(r.roundHash!, bitmap));
    this.state = 'signed';
    return [{ type: 'secagg_consistency_signature', jobId: this.jobId, round: this.round, session: this.cfg!.session, signature: toBase64Url(signature) }];
  }

  /** Round 4 Unmasking: check ≥ t neighbour signatures on U3, reveal exactly one share per peer. */
  private onUnmaskRequest(msg: UnmaskRequest): SecAggClientMessage[] {
    const r = this.cfg!;
    const transcript = consistencyTranscript(r.roundHash!, this.survivorsBitmap!);
    const signers = new Set<string>();
    for (const s of msg.signatures) {
      const peer = this.peers.get(s.clientId);
      if (!peer || !this.survivors!.has(peer.index)) throw this.fail(E.BAD_MESSAGE, `signature from ${s.clientId}, not a surviving neighbour`);
      if (signers.has(s.clientId)) throw this.fail(E.BAD_MESSAGE, `two signatures from ${s.clientId}`);
      if (!ed25519Verify(peer.identityKey, transcript, this.decode(s.signature, 'signature'))) {
        throw this.fail(E.BAD_SIGNATURE, `${s.clientId} did not sign this survivor set`);
      }
      signers.add(s.clientId);
    }
    if (signers.size < r.config.threshold) {
      throw this.fail(E.UNSAFE_REQUEST, `only ${signers.size} neighbours confirmed the survivor set; threshold is ${r.config.threshold}`);
    }
    const selfShares: { of: string; share: string }[] = [];
    const keyShares: { of: string; share: string }[] = [];
    for (const [id, sh] of this.held) {
      const kind = this.survivors!.has(this.peers.get(id)!.index) ? 'self' : 'key';
      const previous = this.disclosed.get(id);
      if (previous !== undefined && previous !== kind) throw this.fail(E.UNSAFE_REQUEST, `would reveal both shares of ${id}`);
      this.disclosed.set(id, kind);
      if (kind === 'self') selfShares.push({ of: id, share: toBase64Url(encodeShareValue(sh.selfMaskShare)) });
      else keyShares.push({ of: id, share: toBase64Url(encodeShareValue(sh.keyShare)) });
    }
    this.state = 'done';
    this.wipeSecrets();
    return [{ type: 'secagg_unmask', jobId: this.jobId, round: this.round, session: this.cfg!.session, selfShares, keyShares }];
  }

  // ---- helpers --------------------------------------------------------------------------------

  private expect(phase: SecAggClientPhase, type: string): void {
    if (this.state !== phase) throw new SecAggError(E.UNEXPECTED, `${type} not expected in phase ${this.state}`);
  }

  /** Runs a phase handler; any unexpected exception aborts the client (fail closed). */
  private guard(fn: () => SecAggClientMessage[]): SecAggClientMessage[] {
    try {
      return fn();
    } catch (e) {
      if (this.state !== 'aborted') this.abort(e instanceof Error ? e.message : String(e));
      throw e instanceof SecAggError ? e : new SecAggError(E.ABORTED, `client aborted: ${this.reason}`);
    }
  }

  private fail(code: (typeof E)[keyof typeof E], message: string): SecAggError {
    this.abort(message);
    return new SecAggError(code, message);
  }

  private decode(text: string, what: string): Uint8Array {
    try {
      return fromBase64Url(text);
    } catch {
      throw this.fail(E.BAD_MESSAGE, `${what} is not base64url`);
    }
  }

  private checkInput(values: Uint32Array): void {
    const { dim, bits } = this.cfg!.config;
    if (!(values instanceof Uint32Array) || values.length !== dim) throw new SecAggError(E.BAD_MESSAGE, `input must be a Uint32Array of ${dim} values`);
    if (bits < 32) {
      let any = 0;
      for (let i = 0; i < values.length; i++) any |= values[i];
      if (any >>> bits !== 0) throw new SecAggError(E.BAD_MESSAGE, `input values must be below 2^${bits}`);
    }
  }

  private wipeSecrets(): void {
    wipe(this.cKeys?.secretKey);
    wipe(this.sKeys?.secretKey);
    wipe(this.selfSeed);
    for (const p of this.pairSeeds) wipe(p.seed);
    this.pairSeeds = [];
    for (const p of this.peers.values()) wipe(p.cShared);
    this.held.clear();
    this.input?.fill(0);
    this.input = undefined;
  }
}
