/**
 * AES-256 encryption (FIPS-197, "Advanced Encryption Standard", 2001, updated 2023) and its CTR mode
 * keystream (NIST SP 800-38A, 2001, §6.5), portable, as the keystream of the 'aes-256-ctr' mask PRG
 * (prg.ts) where node:crypto is absent. Encryption only: CTR never needs the inverse cipher.
 *
 * Two versions, as in chacha20.ts:
 * - `aes256EncryptBlockReference` follows FIPS-197 §5.1 (Cipher) and §5.2 (KeyExpansion) step by
 *   step on a 4×4 byte state: SubBytes, ShiftRows, MixColumns, AddRoundKey. Its S-box is computed from
 *   the definition in §5.1.1 (multiplicative inverse in GF(2^8) followed by the affine map), not typed in.
 * - `aes256CtrKeystreamWords` is the same cipher in the usual 32-bit table form ("T-tables", Daemen &
 *   Rijmen, The Design of Rijndael, §4.2): each round is 16 table look-ups and XORs per block, the
 *   tables combining SubBytes and MixColumns, derived from the same S-box. Columns are little-endian
 *   words (byte r of a column in bits 8r..8r+7), so a Uint32Array of output words *is* the keystream
 *   byte string on a little-endian platform.
 *
 * Not constant time: the table look-ups index memory with key- and counter-dependent bytes, so code
 * sharing the CPU cache could learn about a seed by cache timing (Bernstein 2005; Osvik, Shamir,
 * Tromer 2006). In Node (servers, Node clients) the PRG uses OpenSSL's AES instead (AES-NI on x86-64
 * and ARMv8 crypto extensions, no secret-indexed tables); this fallback only runs where node:crypto is
 * missing (browsers). Deployments that worry about
 * that can announce 'chacha20' (ARX, constant time in JS too) as the round's mask PRG.
 * Tests: FIPS-197 Appendix C.3 and SP 800-38A F.5.5 vectors, the two versions against each other,
 * and against node:crypto's 'aes-256-ctr'.
 */
import { CohortError } from '../errors.ts';

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new CohortError('UNSUPPORTED_PLATFORM', 'aes: little-endian platform required');

export const AES256_KEY_BYTES = 32;
const NR = 14; // FIPS-197 §5, Table 3: Nr = 14 rounds for Nk = 8
const NK = 8;
const ROUND_KEY_WORDS = 4 * (NR + 1); // 60

// ---- GF(2^8) and the S-box (FIPS-197 §4, §5.1.1) -----------------------------------------------

/** FIPS-197 §4.2.1 xtime: multiplication by x modulo m(x) = x^8 + x^4 + x^3 + x + 1. */
const xtime = (b: number): number => ((b << 1) ^ (b & 0x80 ? 0x1b : 0)) & 0xff;

/** FIPS-197 §4.2: product in GF(2^8) by shift-and-add. */
export function gfMul(a: number, b: number): number {
  let p = 0;
  for (; b !== 0; b >>= 1, a = xtime(a)) if (b & 1) p ^= a;
  return p;
}

/** FIPS-197 §5.1.1: S-box = affine transform of the multiplicative inverse ({00} maps to {00}). */
function computeSbox(): Uint8Array {
  const s = new Uint8Array(256);
  for (let x = 0; x < 256; x++) {
    let inv = 0;
    if (x !== 0) for (inv = 1; gfMul(x, inv) !== 1; inv++);
    // b'_i = b_i ⊕ b_{i+4} ⊕ b_{i+5} ⊕ b_{i+6} ⊕ b_{i+7} ⊕ c_i, c = {63}
    let y = 0;
    for (let i = 0; i < 8; i++) {
      const bit = ((inv >> i) ^ (inv >> ((i + 4) % 8)) ^ (inv >> ((i + 5) % 8)) ^ (inv >> ((i + 6) % 8)) ^ (inv >> ((i + 7) % 8)) ^ (0x63 >> i)) & 1;
      y |= bit << i;
    }
    s[x] = y;
  }
  return s;
}

/** The AES S-box (FIPS-197 Table 4), computed. */
export const SBOX: Uint8Array = computeSbox();

// ---- reference: FIPS-197 §5.1 and §5.2 literally ------------------------------------------------

/** FIPS-197 §5.2 KeyExpansion for Nk = 8: 60 four-byte words w[i], as 240 bytes. */
export function aes256KeyExpansionReference(key: Uint8Array): Uint8Array {
  checkKey(key);
  const w = new Uint8Array(4 * ROUND_KEY_WORDS);
  w.set(key);
  let rcon = 0x01;
  const temp = new Uint8Array(4);
  for (let i = NK; i < ROUND_KEY_WORDS; i++) {
    temp.set(w.subarray(4 * (i - 1), 4 * i));
    if (i % NK === 0) {
      // temp = SubWord(RotWord(temp)) xor Rcon[i/Nk]
      const t0 = temp[0];
      temp[0] = SBOX[temp[1]] ^ rcon;
      temp[1] = SBOX[temp[2]];
      temp[2] = SBOX[temp[3]];
      temp[3] = SBOX[t0];
      rcon = xtime(rcon);
    } else if (i % NK === 4) {
      for (let j = 0; j < 4; j++) temp[j] = SBOX[temp[j]]; // SubWord, Nk > 6 only
    }
    for (let j = 0; j < 4; j++) w[4 * i + j] = w[4 * (i - NK) + j] ^ temp[j];
  }
  return w;
}

/** FIPS-197 §5.1 Cipher on one 16-byte block (state[r][c] = in[r + 4c]). */
export function aes256EncryptBlockReference(key: Uint8Array, input: Uint8Array): Uint8Array {
  if (input.length !== 16) throw new RangeError('aes: block must be 16 bytes');
  const w = aes256KeyExpansionReference(key);
  const state = Uint8Array.from(input); // index r + 4c (a copy, also for Buffer inputs)
  const addRoundKey = (round: number) => {
    for (let i = 0; i < 16; i++) state[i] ^= w[16 * round + i];
  };
  const subBytes = () => {
    for (let i = 0; i < 16; i++) state[i] = SBOX[state[i]];
  };
  const shiftRows = () => {
    // s'[r][c] = s[r][(c + r) mod 4]
    const s = Uint8Array.from(state);
    for (let r = 1; r < 4; r++) for (let c = 0; c < 4; c++) state[r + 4 * c] = s[r + 4 * ((c + r) % 4)];
  };
  const mixColumns = () => {
    for (let c = 0; c < 4; c++) {
      const [a0, a1, a2, a3] = state.subarray(4 * c, 4 * c + 4);
      state[4 * c] = gfMul(a0, 2) ^ gfMul(a1, 3) ^ a2 ^ a3;
      state[4 * c + 1] = a0 ^ gfMul(a1, 2) ^ gfMul(a2, 3) ^ a3;
      state[4 * c + 2] = a0 ^ a1 ^ gfMul(a2, 2) ^ gfMul(a3, 3);
      state[4 * c + 3] = gfMul(a0, 3) ^ a1 ^ a2 ^ gfMul(a3, 2);
    }
  };
  addRoundKey(0);
  for (let round = 1; round < NR; round++) {
    subBytes();
    shiftRows();
    mixColumns();
    addRoundKey(round);
  }
  subBytes();
  shiftRows();
  addRoundKey(NR);
  return state;
}

// ---- fast: 32-bit tables ------------------------------------------------------------------------

/**
 * T0[x] = the MixColumns image of column (S[x], 0, 0, 0) = bytes (2·S[x], S[x], S[x], 3·S[x]) as a
 * little-endian word; T1..T3 are T0 rotated by 8, 16, 24 bits (the same column with the byte in row
 * 1, 2, 3). F0..F3[x] = S[x] in byte 0..3 (final round: SubBytes without MixColumns).
 */
const T0 = new Int32Array(256);
const T1 = new Int32Array(256);
const T2 = new Int32Array(256);
const T3 = new Int32Array(256);
const F0 = new Int32Array(256);
const F1 = new Int32Array(256);
const F2 = new Int32Array(256);
const F3 = new Int32Array(256);
for (let x = 0; x < 256; x++) {
  const s = SBOX[x];
  const t = gfMul(s, 2) | (s << 8) | (s << 16) | (gfMul(s, 3) << 24);
  T0[x] = t;
  T1[x] = (t << 8) | (t >>> 24);
  T2[x] = (t << 16) | (t >>> 16);
  T3[x] = (t << 24) | (t >>> 8);
  F0[x] = s;
  F1[x] = s << 8;
  F2[x] = s << 16;
  F3[x] = s << 24;
}
const S4 = F0;

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== AES256_KEY_BYTES) throw new RangeError(`aes: key must be ${AES256_KEY_BYTES} bytes`);
}

/** FIPS-197 §5.2 KeyExpansion (Nk = 8) as 60 little-endian words (word i = bytes w[4i..4i+3]). */
export function aes256ExpandKey(key: Uint8Array): Int32Array {
  checkKey(key);
  const w = new Int32Array(ROUND_KEY_WORDS);
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  for (let i = 0; i < NK; i++) w[i] = view.getInt32(4 * i, true);
  let rcon = 0x01;
  for (let i = NK; i < ROUND_KEY_WORDS; i++) {
    let t = w[i - 1];
    if (i % NK === 0) {
      // SubWord(RotWord(t)) ⊕ Rcon: RotWord moves byte 1 to byte 0, i.e. a right rotation here.
      t = (S4[(t >>> 8) & 0xff] | (S4[(t >>> 16) & 0xff] << 8) | (S4[t >>> 24] << 16) | (S4[t & 0xff] << 24)) ^ rcon;
      rcon = xtime(rcon);
    } else if (i % NK === 4) {
      t = S4[t & 0xff] | (S4[(t >>> 8) & 0xff] << 8) | (S4[(t >>> 16) & 0xff] << 16) | (S4[t >>> 24] << 24);
    }
    w[i] = w[i - NK] ^ t;
  }
  return w;
}

const bswap = (x: number): number => ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);

/**
 * AES-256 in CTR mode with an all-zero plaintext (SP 800-38A §6.5): fills `out` (a multiple of 4
 * words) with E(K, T_j) for consecutive counter blocks T_j, where `counter` holds T as four 32-bit
 * big-endian integers (counter[0] the most significant) and the increment is +1 mod 2^128 (the
 * standard incrementing function of SP 800-38A Appendix B.1 with m = 128). `counter` is advanced in
 * place past the last block used. `rk` from `aes256ExpandKey`.
 */
export function aes256CtrKeystreamWords(rk: Int32Array, counter: Uint32Array, out: Uint32Array | Int32Array): void {
  if (rk.length !== ROUND_KEY_WORDS) throw new RangeError('aes: expanded key must be 60 words');
  if (out.length % 4 !== 0) throw new RangeError('aes: output must be whole 16-byte blocks');
  const o32 = out instanceof Int32Array ? out : new Int32Array(out.buffer, out.byteOffset, out.length);
  ctrWords(rk, counter, o32);
}

function ctrWords(rk: Int32Array, counter: Uint32Array, out: Int32Array): void {
  // Local aliases of the tables: V8 then keeps them in registers (~2× faster than module constants).
  const A = T0, B = T1, C = T2, D = T3, E = F0, F = F1, G = F2, H = F3;
  let c0 = counter[0] >>> 0, c1 = counter[1] >>> 0, c2 = counter[2] >>> 0, c3 = counter[3] >>> 0;
  // The state's columns are the little-endian words of the big-endian counter block; the first
  // three columns after AddRoundKey(0) change only when the low 32-bit counter word wraps.
  let a0 = bswap(c0) ^ rk[0], a1 = bswap(c1) ^ rk[1], a2 = bswap(c2) ^ rk[2];
  const k3 = rk[3];
  const n = out.length;
  for (let o = 0; o < n; o += 4) {
    let s0 = a0, s1 = a1, s2 = a2, s3 = bswap(c3) ^ k3;
    let r = 4;
    for (; r < 4 * NR; r += 4) {
      // Column j of the result takes row i from column j + i (ShiftRows), through T_i (SubBytes, MixColumns).
      const t0 = A[s0 & 0xff] ^ B[(s1 >>> 8) & 0xff] ^ C[(s2 >>> 16) & 0xff] ^ D[s3 >>> 24] ^ rk[r];
      const t1 = A[s1 & 0xff] ^ B[(s2 >>> 8) & 0xff] ^ C[(s3 >>> 16) & 0xff] ^ D[s0 >>> 24] ^ rk[r + 1];
      const t2 = A[s2 & 0xff] ^ B[(s3 >>> 8) & 0xff] ^ C[(s0 >>> 16) & 0xff] ^ D[s1 >>> 24] ^ rk[r + 2];
      const t3 = A[s3 & 0xff] ^ B[(s0 >>> 8) & 0xff] ^ C[(s1 >>> 16) & 0xff] ^ D[s2 >>> 24] ^ rk[r + 3];
      s0 = t0;
      s1 = t1;
      s2 = t2;
      s3 = t3;
    }
    // Final round: SubBytes, ShiftRows, AddRoundKey (no MixColumns).
    out[o] = E[s0 & 0xff] ^ F[(s1 >>> 8) & 0xff] ^ G[(s2 >>> 16) & 0xff] ^ H[s3 >>> 24] ^ rk[r];
    out[o + 1] = E[s1 & 0xff] ^ F[(s2 >>> 8) & 0xff] ^ G[(s3 >>> 16) & 0xff] ^ H[s0 >>> 24] ^ rk[r + 1];
    out[o + 2] = E[s2 & 0xff] ^ F[(s3 >>> 8) & 0xff] ^ G[(s0 >>> 16) & 0xff] ^ H[s1 >>> 24] ^ rk[r + 2];
    out[o + 3] = E[s3 & 0xff] ^ F[(s0 >>> 8) & 0xff] ^ G[(s1 >>> 16) & 0xff] ^ H[s2 >>> 24] ^ rk[r + 3];
    // T_{j+1} = T_j + 1 mod 2^128
    c3 = (c3 + 1) >>> 0;
    if (c3 === 0) {
      c2 = (c2 + 1) >>> 0;
      if (c2 === 0) {
        c1 = (c1 + 1) >>> 0;
        if (c1 === 0) c0 = (c0 + 1) >>> 0;
      }
      a0 = bswap(c0) ^ rk[0];
      a1 = bswap(c1) ^ rk[1];
      a2 = bswap(c2) ^ rk[2];
    }
  }
  counter[0] = c0;
  counter[1] = c1;
  counter[2] = c2;
  counter[3] = c3;
}

/** One block: E(K, input) (FIPS-197 §5.1), via the table form. */
export function aes256EncryptBlock(key: Uint8Array, input: Uint8Array): Uint8Array {
  if (input.length !== 16) throw new RangeError('aes: block must be 16 bytes');
  // E(K, X) is the first CTR keystream block with initial counter block X.
  const view = new DataView(input.buffer, input.byteOffset, 16);
  const counter = Uint32Array.from([0, 1, 2, 3], (i) => view.getUint32(4 * i, false));
  const out = new Uint32Array(4);
  aes256CtrKeystreamWords(aes256ExpandKey(key), counter, out);
  return new Uint8Array(out.buffer);
}

/** The 16-byte initial counter block as the four big-endian words `aes256CtrKeystreamWords` takes. */
export function counterWords(block: Uint8Array): Uint32Array {
  if (block.length !== 16) throw new RangeError('aes: counter block must be 16 bytes');
  const view = new DataView(block.buffer, block.byteOffset, 16);
  return Uint32Array.from([0, 1, 2, 3], (i) => view.getUint32(4 * i, false));
}

/** SP 800-38A §6.5 CTR encryption: input ⊕ E(K, T_1) ‖ E(K, T_2) ‖ … (decryption is the same). */
export function aes256CtrXor(key: Uint8Array, initialCounter: Uint8Array, input: Uint8Array): Uint8Array {
  const blocks = Math.ceil(input.length / 16);
  const ks = new Uint32Array(blocks * 4);
  aes256CtrKeystreamWords(aes256ExpandKey(key), counterWords(initialCounter), ks);
  const ksBytes = new Uint8Array(ks.buffer);
  const out = new Uint8Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = input[i] ^ ksBytes[i];
  return out;
}
