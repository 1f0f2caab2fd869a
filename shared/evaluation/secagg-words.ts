/**
 * Evaluation statistics as a SecAgg input: a vector of words mod 2^bits whose sum over the survivors
 * decodes to exactly the summed statistics. Every statistic is a non-negative integer (stats.ts), but
 * one client's NLL sum can reach ~2^44 and a 32-bit modulus would wrap. So each value is split into
 * `LIMBS` limbs of `LIMB_BITS` bits; the survivors' limbs are summed limb by limb, and the value is
 * Σ_j 2^(j·LIMB_BITS) · (Σ_clients limb_j). Nothing wraps as long as n · (2^LIMB_BITS − 1) < 2^bits,
 * i.e. up to 2^(bits − LIMB_BITS) clients (65,536 at 32 bits), which `maxClientsFor` states and
 * `encodeStatsWords` / `decodeStatsWords` check. No rounding, no scaling: the decoding is exact.
 */
import { CALIBRATION_BINS, type EvalStats } from './stats.ts';

export const LIMB_BITS = 16;
/** 3 limbs of 16 bits: values < 2^48 per client (the schema's per-client sums stay far below). */
export const LIMBS = 3;
const LIMB = 2 ** LIMB_BITS;

/** How many values a K-class statistics vector has (before limbs). */
export function statsValues(numClasses: number): number {
  return 1 + numClasses * numClasses + 3 * CALIBRATION_BINS + 2;
}

/** Words of the SecAgg input for K classes. */
export function statsWords(numClasses: number): number {
  return statsValues(numClasses) * LIMBS;
}

/** The largest cohort whose limb sums cannot wrap mod 2^bits. */
export function maxClientsFor(bits: number): number {
  return Math.floor((2 ** bits - 1) / (LIMB - 1));
}

function flatten(s: EvalStats): number[] {
  return [s.count, ...s.confusion, ...s.binCount, ...s.binCorrect, ...s.binConfidence, s.brier, s.nll];
}

export function encodeStatsWords(s: EvalStats, bits: number): Uint32Array {
  if (bits < LIMB_BITS || bits > 32) throw new RangeError(`stats words: bits ${bits} outside [${LIMB_BITS}, 32]`);
  const values = flatten(s);
  const out = new Uint32Array(values.length * LIMBS);
  values.forEach((x, i) => {
    if (!Number.isSafeInteger(x) || x < 0 || x >= 2 ** (LIMB_BITS * LIMBS)) throw new RangeError(`stats words: value ${x} is not an integer in [0, 2^${LIMB_BITS * LIMBS})`);
    let rest = x;
    for (let j = 0; j < LIMBS; j++) {
      out[i * LIMBS + j] = rest % LIMB;
      rest = Math.floor(rest / LIMB);
    }
  });
  return out;
}

/** The summed statistics from the SecAgg sum of `clients` encoded vectors (mod 2^bits). */
export function decodeStatsWords(sum: Uint32Array, numClasses: number, bits: number, clients: number): EvalStats {
  if (clients > maxClientsFor(bits)) throw new RangeError(`stats words: ${clients} clients could wrap ${bits}-bit limb sums (at most ${maxClientsFor(bits)})`);
  if (sum.length !== statsWords(numClasses)) throw new RangeError(`stats words: ${sum.length} words, expected ${statsWords(numClasses)}`);
  const values: number[] = [];
  for (let i = 0; i < sum.length / LIMBS; i++) {
    let x = 0;
    for (let j = LIMBS - 1; j >= 0; j--) x = x * LIMB + sum[i * LIMBS + j];
    values.push(x);
  }
  const K = numClasses;
  let at = 0;
  const take = (n: number) => values.slice(at, (at += n));
  const count = take(1)[0];
  return {
    numClasses: K,
    count,
    confusion: take(K * K),
    binCount: take(CALIBRATION_BINS),
    binCorrect: take(CALIBRATION_BINS),
    binConfidence: take(CALIBRATION_BINS),
    brier: take(1)[0],
    nll: take(1)[0],
  };
}
