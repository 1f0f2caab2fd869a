import { describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import { cryptoWords, seededRng, type UniformWords, wordsFromRng } from '../random.ts';
import { discreteGaussianNormalizer, discreteGaussianPmf, discreteGaussianVariance } from './discrete-gaussian.ts';
import {
  type TableDiscreteGaussian,
  TABLE_MAX_ENTRIES,
  addDiscreteGaussianNoiseFast,
  createTableDiscreteGaussian,
  deltaFromTotalVariation,
  discreteGaussianNoiseTvBound,
  tableDiscreteGaussianSupports,
} from './discrete-gaussian-table.ts';
import { chiSquareDiscrete } from './testing/goodness-of-fit.ts';

const TWO_96 = 1n << 96n;

/** exp(−k²/(2σ²))/Z with Z computed once (`discreteGaussianPmf` recomputes it on every call). */
function pmfOf(sigmaSquared: number): (k: number) => number {
  const z = discreteGaussianNormalizer(sigmaSquared);
  return (k) => Math.exp((-k * k) / (2 * sigmaSquared)) / z;
}

/** The table's CDF F_k·2^96 for k = −support..support, from its exact masses. */
function cdfOf(t: TableDiscreteGaussian): bigint[] {
  const out: bigint[] = [];
  let acc = 0n;
  for (let k = -t.support; k <= t.support; k++) {
    acc += t.mass(k);
    out.push(acc);
  }
  return out;
}

function tally(values: ArrayLike<number>): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < values.length; i++) counts.set(values[i], (counts.get(values[i]) ?? 0) + 1);
  return counts;
}

describe('table discrete Gaussian: the table', () => {
  for (const sigma2 of [1, 2.5, 37.3, 100, 1e4, 1e6]) {
    it(`σ² = ${sigma2}: masses sum to 2^96, are symmetric, and match the pmf to 1e-12 relative`, () => {
      const t = createTableDiscreteGaussian(sigma2);
      const pmf = pmfOf(sigma2);
      expect(t.entries).toBe(2 * t.support + 1);
      let total = 0n;
      let worst = 0;
      let compared = 0;
      for (let k = -t.support; k <= t.support; k++) {
        const m = t.mass(k);
        expect(m >= 0n).toBe(true);
        total += m;
        if (k > 0) expect(m).toBe(t.mass(-k));
        const p = pmf(k);
        if (p > 1e-15) {
          worst = Math.max(worst, Math.abs(t.probability(k) / p - 1));
          compared++;
        }
      }
      expect(total).toBe(TWO_96);
      expect(worst, `max relative error over ${compared} values`).toBeLessThan(1e-12);
      expect(compared).toBeGreaterThan(Math.min(2 * t.support, 10 * Math.sqrt(sigma2)));
      // The float reference agrees with the cached-normaliser pmf used above.
      for (const k of [0, 1, Math.round(Math.sqrt(sigma2))]) expect(discreteGaussianPmf(k, sigma2)).toBeCloseTo(pmf(k), 15);
      // Outside the support the table has no mass, and the exact distribution almost none.
      expect(t.mass(t.support + 1)).toBe(0n);
      expect(t.mass(-t.support - 1)).toBe(0n);
      let outside = 0;
      for (let k = t.support + 1; k < t.support + 10 * Math.sqrt(sigma2) + 10; k++) outside += 2 * pmf(k);
      expect(outside).toBeLessThanOrEqual(t.tvBound);
    });
  }

  it('σ² so small that all mass is at 0 gives the one-value table', () => {
    for (const sigma2 of [1e-3, 1e-300]) {
      const t = createTableDiscreteGaussian(sigma2);
      expect(t.support).toBe(0);
      expect(t.mass(0)).toBe(TWO_96);
      expect(t.tvBound).toBeLessThanOrEqual(2 ** -100);
      expect(Array.from(t.sampleInto(new Int32Array(100), false, wordsFromRng(seededRng('tiny'))))).toEqual(new Array(100).fill(0));
    }
    // σ² = 0.02: p(±1) = e^{−25}/Z ≈ 2^−36 and p(±2) = e^{−100}/Z < 2^−96, so three values remain.
    const t = createTableDiscreteGaussian(0.02);
    expect(t.support).toBe(1);
    expect(Math.abs(t.probability(1) / pmfOf(0.02)(1) - 1)).toBeLessThan(1e-12);
  });

  it('caches tables by σ², and takes σ² as an exact rational', () => {
    expect(createTableDiscreteGaussian(100)).toBe(createTableDiscreteGaussian(100));
    const tenth = createTableDiscreteGaussian({ num: 1n, den: 10n });
    const tenthDouble = createTableDiscreteGaussian(0.1);
    expect(tenth).not.toBe(tenthDouble); // 1/10 and the double nearest it are different σ²
    expect(tenth.sigmaSquaredExact).toEqual({ num: 1n, den: 10n });
    expect(tenth.probability(1)).toBeCloseTo(tenthDouble.probability(1), 15);
  });
});

describe('table discrete Gaussian: statistical-distance bound', () => {
  it('tvBound is ≤ 2^−80 at σ = 5,000, grows with σ, and is dominated by the 96-bit rounding', () => {
    const t = createTableDiscreteGaussian(5000 * 5000);
    expect(t.tvBound).toBeLessThanOrEqual(2 ** -80);
    expect(t.tailBound).toBeLessThanOrEqual(2 ** -100);
    expect(t.arithmeticBound).toBeLessThan(2 ** -120);
    expect(t.arithmeticBound).toBeGreaterThan(t.support ** 3 * 2 ** -192); // (2K+1)·(e₂+1)·K(K−1)/2 units
    // (K + 1)·2^−96 with K ≥ support ≈ 11.3σ (tail ≤ 2^−100).
    expect(t.roundingBound).toBeGreaterThanOrEqual((t.support + 1) * 2 ** -96);
    expect(t.roundingBound).toBeLessThan(1.05 * (t.support + 1) * 2 ** -96);
    expect(t.support).toBeGreaterThan(11 * 5000);
    expect(t.support).toBeLessThan(12 * 5000);
    expect(t.tvBound).toBeGreaterThanOrEqual(t.tailBound + t.arithmeticBound + t.roundingBound);
    let previous = 0;
    for (const sigma of [1, 10, 100, 1000, 5000, 20000]) {
      const bound = createTableDiscreteGaussian(sigma * sigma).tvBound;
      expect(bound, `σ=${sigma}`).toBeGreaterThan(previous);
      expect(bound, `σ=${sigma}`).toBeLessThan(2 ** -75);
      previous = bound;
    }
  });

  for (const sigma2 of [2.5, 100]) {
    it(`σ² = ${sigma2}: the exact total-variation distance, from an independent 400-bit computation, is within tvBound`, () => {
      const t = createTableDiscreteGaussian(sigma2);
      // q = exp(−1/(2σ²)) by its Taylor series at W bits, then q^(k²) by square-and-multiply (not the
      // table's recurrence), each rounding adding at most a few units of 2^−W.
      const W = 400n;
      const one = 1n << W;
      const den = BigInt(2 * sigma2 * 2); // 1/(2σ²) = 2/den for σ² ∈ {2.5, 100}
      let term = one;
      let q = one;
      for (let j = 1n; term !== 0n; j++) {
        term = (term * 2n) / (den * j);
        q += j & 1n ? -term : term;
      }
      const mul = (a: bigint, b: bigint): bigint => (a * b) >> W;
      const pow = (base: bigint, e: number): bigint => {
        let result = one;
        let b = base;
        for (let n = e; n > 0; n >>= 1) {
          if (n & 1) result = mul(result, b);
          b = mul(b, b);
        }
        return result;
      };
      const far = t.support + 50;
      const p: bigint[] = [];
      let z = 0n;
      for (let k = -far; k <= far; k++) {
        const v = pow(q, k * k);
        p.push(v);
        z += v;
      }
      // 2·TV = Σ |mass/2^96 − p/Z|, on the common denominator 2^96·Z.
      let l1 = 0n;
      for (let k = -far; k <= far; k++) {
        const diff = t.mass(k) * z - (p[k + far] << 96n);
        l1 += diff < 0n ? -diff : diff;
      }
      const tv = Number((l1 << 200n) / (2n * z * (1n << 96n))) * 2 ** -200;
      expect(tv).toBeLessThanOrEqual(t.tvBound);
      // Not vacuous either: the 96-bit rounding really costs about what the bound charges for it.
      expect(tv).toBeGreaterThan(t.roundingBound / 8);
    });
  }

  it('totals over a round, and the δ term of replacing exact noise', () => {
    const t = createTableDiscreteGaussian(366 * 366);
    const samples = 100 * 1_663_370;
    expect(t.totalVariationBound(samples)).toBeGreaterThanOrEqual(samples * t.tvBound);
    expect(t.totalVariationBound(samples)).toBeLessThan(samples * t.tvBound * (1 + 1e-9));
    expect(t.totalVariationBound(samples)).toBeLessThan(1e-15);
    expect(discreteGaussianNoiseTvBound(366 * 366, samples)).toBe(t.totalVariationBound(samples));
    expect(discreteGaussianNoiseTvBound(1e12, samples)).toBe(0); // exact sampler there
    expect(discreteGaussianNoiseTvBound(0, samples)).toBe(0);
    expect(deltaFromTotalVariation(1e-20, 0)).toBeCloseTo(2e-20, 30);
    expect(deltaFromTotalVariation(1e-20, Math.log(3))).toBeGreaterThanOrEqual(4e-20);
    expect(() => t.totalVariationBound(-1)).toThrow(RangeError);
    expect(() => deltaFromTotalVariation(-1, 1)).toThrow(RangeError);
  });
});

describe('table discrete Gaussian: sampling', () => {
  const N = 200_000;
  for (const sigma2 of [1, 100, 1e4]) {
    describe(`σ² = ${sigma2}`, () => {
      const t = createTableDiscreteGaussian(sigma2);
      const values = t.sampleInto(new Int32Array(N), false, wordsFromRng(seededRng(`table-${sigma2}`)));
      const counts = tally(values);
      const pmf = pmfOf(sigma2);

      it('passes Pearson χ² against the exact pmf (p > 1e-4)', () => {
        const chi = chiSquareDiscrete(counts, N, pmf);
        expect(chi.dof).toBeGreaterThan(2);
        expect(chi.pValue, `χ²=${chi.stat} dof=${chi.dof}`).toBeGreaterThan(1e-4);
      });

      it('has variance within 1% of the exact variance, mean ≈ 0, and sign symmetry', () => {
        let sum = 0;
        let second = 0;
        let positive = 0;
        let negative = 0;
        for (const v of values) {
          sum += v;
          second += v * v;
          if (v > 0) positive++;
          else if (v < 0) negative++;
        }
        const exact = discreteGaussianVariance(sigma2);
        expect(Math.abs(second / N / exact - 1)).toBeLessThan(0.01);
        expect(Math.abs(sum / N)).toBeLessThan((4.5 * Math.sqrt(exact)) / Math.sqrt(N));
        const z = (positive - negative) / Math.sqrt(positive + negative);
        expect(Math.abs(z)).toBeLessThan(4.5);
      });
    });
  }

  it('χ² has power: samples at σ² = 100 are rejected as σ² = 104', () => {
    const t = createTableDiscreteGaussian(100);
    const values = t.sampleInto(new Int32Array(N), false, wordsFromRng(seededRng('power')));
    expect(chiSquareDiscrete(tally(values), N, pmfOf(104)).pValue).toBeLessThan(1e-4);
  });

  it('samples from the CSPRNG by default (variance within 3% at 100k)', () => {
    const t = createTableDiscreteGaussian(400);
    const v = t.sampleInto(new Float64Array(100_000));
    let second = 0;
    for (const x of v) second += x * x;
    expect(Math.abs(second / v.length / discreteGaussianVariance(400) - 1)).toBeLessThan(0.03);
    const one = t.sample();
    expect(Number.isInteger(one) && Math.abs(one) <= t.support).toBe(true);
    expect(new Set(Array.from({ length: 50 }, () => t.sample())).size).toBeGreaterThan(5);
  });

  it('is reproducible with an injected source; adds in place to Float64Array and Int32Array alike', () => {
    const t = createTableDiscreteGaussian(50);
    const a = t.sampleInto(new Float64Array(40_000), false, wordsFromRng(seededRng(7)));
    const b = t.sampleInto(new Float64Array(40_000), false, wordsFromRng(seededRng(7)));
    expect(b).toEqual(a);
    const f = t.sampleInto(new Float64Array(40_000).fill(0.5), true, wordsFromRng(seededRng(7)));
    const i = t.sampleInto(new Int32Array(40_000).fill(-3), true, wordsFromRng(seededRng(7)));
    for (let k = 0; k < a.length; k++) {
      expect(f[k]).toBe(a[k] + 0.5);
      expect(i[k]).toBe(a[k] - 3);
    }
    // add = false overwrites.
    expect(t.sampleInto(new Float64Array(40_000).fill(99), false, wordsFromRng(seededRng(7)))).toEqual(a);
    const s = t.sample(wordsFromRng(seededRng(7)));
    expect(s).toBe(a[0]);
  });

  it('refuses int32 overflow', () => {
    const t = createTableDiscreteGaussian(1e4);
    const v = new Int32Array(1000).fill(0x7fffffff);
    expect(() => t.sampleInto(v, true, wordsFromRng(seededRng('overflow')))).toThrow(/int32/);
    try {
      t.sampleInto(new Int32Array(1000).fill(-0x80000000), true, wordsFromRng(seededRng('overflow')));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CohortError);
      expect((err as CohortError).code).toBe('NOISE_OVERFLOW');
    }
  });
});

describe('table discrete Gaussian: exact inversion, including ties of the high word', () => {
  /**
   * Samples each 96-bit U in `us` through the table with a word source that serves U's high words as
   * the bulk words and then, in order, the middle and low words of exactly those U whose high word ties
   * an entry's (the sampler must draw them for those, in that order, and for no others).
   */
  function sampleAt(t: TableDiscreteGaussian, us: bigint[], hiWords: Set<number>): number[] {
    const ties: number[] = [];
    for (const u of us) {
      if (hiWords.has(Number(u >> 64n))) ties.push(Number((u >> 32n) & 0xffffffffn), Number(u & 0xffffffffn));
    }
    let first = true;
    let served = 0;
    const words: UniformWords = (out) => {
      if (first) {
        expect(out.length).toBe(us.length); // one bulk fill
        for (let i = 0; i < us.length; i++) out[i] = Number(us[i] >> 64n);
        first = false;
        return;
      }
      for (let i = 0; i < out.length; i++) out[i] = served + i < ties.length ? ties[served + i] : 0;
      served += out.length;
    };
    const values = Array.from(t.sampleInto(new Int32Array(us.length), false, words));
    expect(served >= ties.length).toBe(true);
    return values;
  }

  for (const sigma2 of [4, 100, 1e4]) {
    it(`σ² = ${sigma2}: U at, just below and just above every CDF entry, and random U, invert exactly`, () => {
      const t = createTableDiscreteGaussian(sigma2);
      const cdf = cdfOf(t);
      const hiWords = new Set(cdf.slice(0, -1).map((f) => Number(f >> 64n)));
      const reference = (u: bigint): number => {
        // The smallest j with u < F_j, by bisection.
        let lo = 0;
        let hi = cdf.length - 1;
        while (lo < hi) {
          const m = (lo + hi) >> 1;
          if (u < cdf[m]) hi = m;
          else lo = m + 1;
        }
        return lo - t.support;
      };
      const us: bigint[] = [];
      const step = Math.max(1, Math.floor(cdf.length / 4000));
      for (let j = 0; j < cdf.length - 1; j += step) {
        for (const d of [-1n, 0n, 1n]) {
          const u = cdf[j] + d;
          if (u >= 0n && u < TWO_96) us.push(u);
        }
      }
      const rng = seededRng(`inversion-${sigma2}`);
      for (let i = 0; i < 2000; i++) us.push((BigInt(rng.nextUint32()) << 64n) | (BigInt(rng.nextUint32()) << 32n) | BigInt(rng.nextUint32()));
      expect(us.length).toBeLessThanOrEqual(16384);
      const tieCount = us.filter((u) => hiWords.has(Number(u >> 64n))).length;
      expect(tieCount).toBeGreaterThan(0.9 * (us.length - 2000)); // the U next to entries tie their high word
      const values = sampleAt(t, us, hiWords);
      for (let i = 0; i < us.length; i++) expect(values[i], `U=${us[i]}`).toBe(reference(us[i]));
    });
  }

  it('resolves runs of entries that share a high word (the far tails)', () => {
    const t = createTableDiscreteGaussian(1e4);
    const cdf = cdfOf(t);
    // Far out in the tail, entries of mass < 2^−64 share high word 0 (left) and 2^32 − 1 (right), and
    // some have mass 0 (equal CDF entries): the scan must pass the whole run.
    expect(cdf[20] >> 64n).toBe(0n);
    expect(cdf[cdf.length - 22] >> 64n).toBe(0xffffffffn);
    const reference = (u: bigint): number => cdf.findIndex((f) => u < f) - t.support;
    const us: bigint[] = [0n];
    for (let j = 0; j < 20; j++) us.push(cdf[j], cdf[j] + 1n, cdf[j + 1] - 1n, cdf[cdf.length - 2 - j], cdf[cdf.length - 2 - j] - 1n);
    const hiWords = new Set(cdf.slice(0, -1).map((f) => Number(f >> 64n)));
    const values = sampleAt(t, us, hiWords);
    expect(values).toEqual(us.map(reference));
    expect(new Set(values).size).toBeGreaterThan(10);
  });
});

describe('addDiscreteGaussianNoiseFast and the table range', () => {
  it('takes σ up to ~88,000 into a table and refuses larger tables and bad σ²', () => {
    expect(tableDiscreteGaussianSupports(5000 * 5000)).toBe(true);
    expect(tableDiscreteGaussianSupports(80_000 * 80_000)).toBe(true);
    expect(tableDiscreteGaussianSupports(100_000 * 100_000)).toBe(false);
    expect(tableDiscreteGaussianSupports(0)).toBe(false);
    expect(tableDiscreteGaussianSupports(Number.NaN)).toBe(false);
    try {
      createTableDiscreteGaussian(100_000 * 100_000);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CohortError);
      expect((err as CohortError).code).toBe('NOISE_TABLE_TOO_LARGE');
      expect((err as Error).message).toMatch(/exact sampler/);
    }
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => createTableDiscreteGaussian(bad)).toThrow(CohortError);
      try {
        createTableDiscreteGaussian(bad);
      } catch (err) {
        expect((err as CohortError).code).toBe('BAD_NOISE');
      }
    }
    expect(() => addDiscreteGaussianNoiseFast(new Float64Array(4), -1)).toThrow(CohortError);
    expect(2 * 11.8 * 88_000 + 1).toBeLessThan(TABLE_MAX_ENTRIES * 1.001);
  });

  it('uses the table inside its range and the exact sampler beyond it', () => {
    const table = createTableDiscreteGaussian(900);
    const viaFast = addDiscreteGaussianNoiseFast(new Float64Array(5000), 900, wordsFromRng(seededRng('fast')));
    expect(viaFast).toEqual(table.sampleInto(new Float64Array(5000), false, wordsFromRng(seededRng('fast'))));
    expect(addDiscreteGaussianNoiseFast(new Int32Array(10).fill(4), 0)).toEqual(new Int32Array(10).fill(4));
    // σ = 100,000: exact sampler (a few µs per sample), still N_Z(0, σ²).
    const big = addDiscreteGaussianNoiseFast(new Float64Array(2000), 1e10, wordsFromRng(seededRng('exact')));
    let second = 0;
    for (const x of big) {
      expect(Number.isInteger(x)).toBe(true);
      second += x * x;
    }
    // Var estimate from 2000 samples: relative s.d. √(2/2000) ≈ 3.2%.
    expect(Math.abs(second / big.length / 1e10 - 1)).toBeLessThan(0.15);
  });

  it('cryptoWords fills any length with fresh words', () => {
    const a = new Uint32Array(100_000);
    cryptoWords(a);
    const b = new Uint32Array(100_000);
    cryptoWords(b);
    expect(a).not.toEqual(b);
    let ones = 0;
    for (const w of a) ones += w & 1;
    expect(Math.abs(ones - 50_000)).toBeLessThan(5 * Math.sqrt(25_000));
  });
});
