/**
 * The client's side of secure aggregation for one round: a SecAgg+ client state machine
 * (shared/secagg) plus the encoding of the update (clip → randomized Hadamard rotation → scale 1/γ →
 * conditional randomized rounding → discrete Gaussian noise for distributed DP → mod 2^b), after
 * Kairouz, Liu, Steinke 2021. Only masked integers leave the device.
 *
 * The distributed-DP noise is N_Z(0, σ²) per coordinate (Canonne, Kamath, Steinke 2020). For σ within
 * the table sampler's range (σ ≲ 88,000 integer units) it is drawn by inversion of a 96-bit CDF table
 * (the CDT method of table-based discrete Gaussian samplers, Peikert 2010 / Dwarakanath–Galbraith 2014;
 * `shared/dp/discrete-gaussian-table.ts`), ~10 ns per coordinate instead of the exact sampler's
 * ~2–6 µs. That is an approximation with a proved bound: each sample is within total-variation
 * distance `tvBound` of the exact N_Z(0, σ²) (≈ 2^−84 at σ = 366, ≈ 2^−80 at σ = 5,000, < 2^−75 in
 * the whole range), so a round of n clients × d coordinates is within n·d·tvBound of exact noise and
 * its guarantee is (ε, δ + (1 + e^ε)·n·d·tvBound) instead of (ε, δ) (`discreteGaussianNoiseTvBound`,
 * `deltaFromTotalVariation`); the ledger's trust text says so. Beyond the table's range the exact CKS
 * sampler runs.
 */
import { addDiscreteGaussianNoiseFast } from '../../shared/dp/index.ts';
import type { Logger } from '../../shared/log.ts';
import type { SecAggUp, Train } from '../../shared/protocol/index.ts';
import { encodeUpdate, fromBase64Url, SecAggClient, type SecAggClientMessage } from '../../shared/secagg/index.ts';
import type { Ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import { certifiedPeerCheck, type Certificate, type RevocationView } from '../../shared/identity/index.ts';

/** Who this client is in SecAgg, and whom it accepts as neighbours. */
export interface SecAggIdentity {
  /** Its long-term key: round keys are signed with it (the key its hello proved). */
  key: Ed25519KeyPair;
  certificate?: Certificate;
  /**
   * The federation CA's public key (pinned at enrolment, or configured): when set, every neighbour must
   * show a certificate from it for the identity key that signed its round keys, or the round aborts.
   */
  caPublicKey?: Uint8Array;
  /** With a CA key: the newest CA-signed revocation list this client has accepted (kept across rounds). */
  revocations?: RevocationView;
  now: () => number;
}

export class SecureAggregation {
  readonly round: number;
  private readonly client: SecAggClient;

  constructor(
    clientId: string,
    private readonly train: Train,
    private readonly log: Logger,
    identity: SecAggIdentity,
  ) {
    this.round = train.round;
    const ca = identity.caPublicKey;
    this.client = new SecAggClient({
      clientId,
      jobId: train.jobId,
      round: train.round,
      identity: identity.key,
      ...(identity.certificate ? { certificate: identity.certificate } : {}),
      minSurvivorsFloor: train.secagg!.minSurvivors,
      // With a CA key, a neighbour is someone the CA certified for this job, with the key that signed
      // its round keys: a coordinator cannot slip in clients of its own making. Without one, the
      // coordinator relays identities (honest-but-curious).
      // A neighbour on the newest CA-signed revocation list relayed to this client is refused too.
      ...(ca ? { checkPeer: certifiedPeerCheck(ca, train.jobId, identity.now, identity.revocations ? (s) => identity.revocations!.isRevoked(s) : undefined) } : {}),
      ...(identity.revocations ? { acceptRevocations: (list: unknown) => identity.revocations!.accept(list) } : {}),
    });
  }

  /**
   * Why this client aborted the round's SecAgg (a neighbour without a valid certificate, a steered graph,
   * a bad signature…): the client stops answering, which the coordinator sees as a dropout.
   */
  get aborted(): { code: string; message: string } | undefined {
    return this.abortedWith;
  }
  private abortedWith?: { code: string; message: string };

  /** A server SecAgg message; returns what to send back (nothing if it was rejected). */
  handle(body: Record<string, unknown>): SecAggUp[] {
    try {
      return this.client.handle(body).map((m) => this.wrap(m));
    } catch (err) {
      this.log.warn({ round: this.round, err: (err as Error).message }, 'secure aggregation message rejected');
      if (this.client.phase === 'aborted' && !this.abortedWith) {
        this.abortedWith = { code: (err as { code?: string }).code ?? 'SECAGG_ABORTED', message: (err as Error).message };
      }
      return [];
    }
  }

  /** The trained update: encoded, noised, and (when the server asks) masked. */
  setUpdate(delta: Float32Array): SecAggUp[] {
    const s = this.train.secagg!;
    const params = { dim: delta.length, clipNorm: s.clipNorm, gamma: s.gamma, bits: s.bits, rotationSeed: fromBase64Url(s.rotationSeed) };
    const sigma = s.noiseStddev / s.gamma; // integer units
    // Table sampler within its range (TV ≤ tvBound per coordinate, module comment), else the exact one.
    const { encoded } = encodeUpdate(delta, params, sigma > 0 ? { noise: (v) => void addDiscreteGaussianNoiseFast(v, sigma * sigma) } : {});
    try {
      return this.client.setInput(encoded).map((m) => this.wrap(m));
    } catch (err) {
      this.log.warn({ round: this.round, err: (err as Error).message }, 'secure aggregation refused the input');
      return [];
    }
  }

  private wrap(m: SecAggClientMessage): SecAggUp {
    const { payload, ...body } = m as SecAggClientMessage & { payload?: Uint8Array };
    return { type: 'secagg_up', jobId: this.train.jobId, round: this.round, body, ...(payload ? { payload } : {}) };
  }
}
