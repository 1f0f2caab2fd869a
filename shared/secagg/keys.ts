/**
 * What SecAgg signs and derives, byte for byte. Every transcript and KDF input is a list of
 * length-prefixed fields (frameFields), so distinct inputs never collide.
 *
 * - Round config hash `cfg`: SHA-256 over everything the server announces in AdvertiseRequest (job,
 *   round, ordered cohort, the attempt's fresh 32-byte nonce, k, t, b, d, minimum survivors, mask PRG
 *   — 'aes-256-ctr' when the request names none, hashed by name either way). The advertisement
 *   signatures bind it, so keys from another round — or another attempt of the same round, which has
 *   a fresh nonce — never verify.
 * - AdvertiseKeys signature (Bonawitz et al. CCS 2017, §4, Round 0): Sign(d_u^SK, cfg ‖ u ‖ c_u^PK ‖ s_u^PK).
 * - Neighbour-graph seed, derived, not chosen: the coordinator announces no graph. Once Round 0
 *   closes it lists, in ShareKeysRequest, who advertised (a bitmap A over the cohort) and the digest
 *   of every advertisement in A, a_u = SHA-256("advertisement" ‖ cfg ‖ u ‖ d_u^PK ‖ c_u^PK ‖ s_u^PK ‖ σ_u);
 *   seed = SHA-256("graph-seed" ‖ cfg ‖ A ‖ a_{u1} ‖ a_{u2} ‖ …). Each client checks its own digest and
 *   its neighbours' against the list and derives the graph itself. The advertisements carry fresh
 *   X25519 keys the clients drew, so the coordinator cannot predict the seed before Round 0 closes;
 *   what it keeps is whom it samples and which advertisements it counts (a dropout it may claim,
 *   within the round's dropout allowance) — see server.ts.
 * - Round hash `rh` = SHA-256("round" ‖ cfg ‖ seed): binds everything after Round 0, so clients that
 *   were shown different advertisement lists (different graphs) cannot complete the protocol together:
 * - ConsistencyCheck signature (§4, Round 3): Sign(d_u^SK, rh ‖ U3), U3 as a bitmap over the cohort.
 * - Share encryption key (§4, Round 1): HKDF(X25519(c_u^SK, c_v^PK), salt = rh,
 *   info = "share-key" ‖ sender index ‖ receiver index), so each direction has its own key.
 * - Pairwise mask seed (§4, Round 2): s_{u,v} = HKDF(X25519(s_u^SK, s_v^PK), salt = rh,
 *   info = "pair-mask" ‖ min(u,v) ‖ max(u,v)), the same for both ends.
 * - Share plaintext: version 1 ‖ sender index ‖ receiver index (u32 BE) ‖ b_u share ‖ s_u^SK share
 *   (66 bytes each): the u ‖ v ‖ shares of Bonawitz's Round 1.
 */
import { concatBytes, frameFields, toBase64Url, u32be } from '../crypto/bytes.ts';
import { hkdf } from '../crypto/hkdf.ts';
import { DEFAULT_MASK_PRG, type MaskPrgName } from '../crypto/prg.ts';
import { sha256 } from '../crypto/sha256.ts';
import { decodeShareValue, encodeShareValue, SHARE_VALUE_BYTES } from '../crypto/shamir.ts';

const PROTOCOL = 'cohort/secagg/v1';

export interface RoundConfig {
  jobId: string;
  round: number;
  cohort: readonly string[];
  /** Fresh per attempt (the coordinator's): tells attempts of one round apart. Not the graph seed. */
  nonce: Uint8Array;
  neighbors: number;
  threshold: number;
  bits: number;
  dim: number;
  minSurvivors: number;
  /** The mask PRG (prg.ts); absent means DEFAULT_MASK_PRG ('aes-256-ctr'). */
  prg?: MaskPrgName;
}

/** The round's mask PRG, with the default applied. */
export function roundPrg(c: Pick<RoundConfig, 'prg'>): MaskPrgName {
  return c.prg ?? DEFAULT_MASK_PRG;
}

export function roundConfigHash(c: RoundConfig): Uint8Array {
  return sha256(
    frameFields(
      `${PROTOCOL}/config`,
      c.jobId,
      c.round,
      c.cohort.length,
      ...c.cohort,
      c.nonce,
      c.neighbors,
      c.threshold,
      c.bits,
      c.dim,
      c.minSurvivors,
      roundPrg(c),
    ),
  );
}

/** The `session` field of every message: base64url of the first 12 bytes of the config hash. */
export function sessionId(configHash: Uint8Array): string {
  return toBase64Url(configHash.subarray(0, 12));
}

export function advertiseTranscript(configHash: Uint8Array, clientId: string, cPk: Uint8Array, sPk: Uint8Array): Uint8Array {
  return frameFields(`${PROTOCOL}/advertise`, configHash, clientId, cPk, sPk);
}

/** a_u: the digest of one signed advertisement, as the roster lists it. */
export function advertisementDigest(configHash: Uint8Array, clientId: string, identityKey: Uint8Array, cPk: Uint8Array, sPk: Uint8Array, signature: Uint8Array): Uint8Array {
  return sha256(frameFields(`${PROTOCOL}/advertisement`, configHash, clientId, identityKey, cPk, sPk, signature));
}

/** Bytes of one digest in the roster. */
export const ADVERTISEMENT_DIGEST_BYTES = 32;

/**
 * The neighbour-graph seed from the roster: who advertised (bitmap over the cohort) and their
 * advertisements' digests, concatenated in cohort order.
 */
export function derivedGraphSeed(configHash: Uint8Array, advertised: Uint8Array, digests: Uint8Array): Uint8Array {
  return sha256(frameFields(`${PROTOCOL}/graph-seed`, configHash, advertised, digests));
}

/** rh: binds the round configuration and the derived graph (everything after Round 0 uses it). */
export function roundHash(configHash: Uint8Array, graphSeed: Uint8Array): Uint8Array {
  return sha256(frameFields(`${PROTOCOL}/round`, configHash, graphSeed));
}

export function consistencyTranscript(configHash: Uint8Array, survivors: Uint8Array): Uint8Array {
  return frameFields(`${PROTOCOL}/consistency`, configHash, survivors);
}

export function shareEncryptionKey(dh: Uint8Array, configHash: Uint8Array, sender: number, receiver: number): Uint8Array {
  return hkdf(dh, configHash, frameFields(`${PROTOCOL}/share-key`, sender, receiver), 32);
}

export function pairMaskSeed(dh: Uint8Array, configHash: Uint8Array, a: number, b: number): Uint8Array {
  return hkdf(dh, configHash, frameFields(`${PROTOCOL}/pair-mask`, Math.min(a, b), Math.max(a, b)), 32);
}

const SHARE_PLAINTEXT_VERSION = 1;
export const SHARE_PLAINTEXT_BYTES = 1 + 4 + 4 + 2 * SHARE_VALUE_BYTES;

export interface SharePlaintext {
  sender: number;
  receiver: number;
  selfMaskShare: bigint;
  keyShare: bigint;
}

export function encodeSharePlaintext(p: SharePlaintext): Uint8Array {
  return concatBytes(
    new Uint8Array([SHARE_PLAINTEXT_VERSION]),
    u32be(p.sender),
    u32be(p.receiver),
    encodeShareValue(p.selfMaskShare),
    encodeShareValue(p.keyShare),
  );
}

/** Throws (RangeError / ShamirError) on a malformed plaintext. */
export function decodeSharePlaintext(bytes: Uint8Array): SharePlaintext {
  if (bytes.length !== SHARE_PLAINTEXT_BYTES || bytes[0] !== SHARE_PLAINTEXT_VERSION) throw new RangeError('bad share plaintext');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    sender: view.getUint32(1),
    receiver: view.getUint32(5),
    selfMaskShare: decodeShareValue(bytes.subarray(9, 9 + SHARE_VALUE_BYTES)),
    keyShare: decodeShareValue(bytes.subarray(9 + SHARE_VALUE_BYTES)),
  };
}

/** Survivor set as a bitmap over cohort indices (bit i of byte i>>3, least significant first). */
export function encodeMembers(n: number, members: Iterable<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(n / 8));
  for (const i of members) {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`member ${i} outside cohort of ${n}`);
    out[i >> 3] |= 1 << (i & 7);
  }
  return out;
}

/** Inverse of encodeMembers; throws RangeError on a wrong length or bits beyond n. */
export function decodeMembers(n: number, bitmap: Uint8Array): Set<number> {
  if (bitmap.length !== Math.ceil(n / 8)) throw new RangeError('member bitmap has the wrong length');
  const out = new Set<number>();
  for (let i = 0; i < bitmap.length * 8; i++) {
    if ((bitmap[i >> 3] >> (i & 7)) & 1) {
      if (i >= n) throw new RangeError('member bitmap has bits beyond the cohort');
      out.add(i);
    }
  }
  return out;
}
