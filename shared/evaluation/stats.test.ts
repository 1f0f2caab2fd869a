import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { findGraphParams } from '../secagg/params.ts';
import { simulateRound } from '../secagg/testing/simulate.ts';
import { addPredictions, addStats, binOf, CALIBRATION_BINS, emptyStats, FIXED_POINT, inconsistency, metricsOf, type EvalStats } from './stats.ts';
import { decodeStatsWords, encodeStatsWords, maxClientsFor, statsWords } from './secagg-words.ts';
import { EvalStatsSchema } from './schema.ts';

// Four examples, three classes; the values below are worked by hand.
const PROBS = [0.9, 0.05, 0.05, 0.6, 0.3, 0.1, 0.2, 0.7, 0.1, 0.1, 0.2, 0.7];
const LABELS = [0, 1, 1, 0];
// ex1: conf 0.9 correct (bin 13); ex2: conf 0.6 wrong — 0.6·15 = 9 is the upper edge of bin 8 (0.533, 0.6];
// ex3: conf 0.7 correct (bin 10); ex4: conf 0.7 wrong (bin 10).

describe('evaluation statistics: hand-computed values', () => {
  const s = addPredictions(emptyStats(3), PROBS, LABELS);
  const m = metricsOf(s)!;

  it('counts the confusion matrix and calibration bins', () => {
    expect(s.confusion).toEqual([1, 0, 1, 1, 1, 0, 0, 0, 0]);
    expect(s.binCount[13]).toBe(1);
    expect(s.binCount[10]).toBe(2);
    expect(s.binCorrect[10]).toBe(1);
    expect(s.binCount.reduce((a, b) => a + b, 0)).toBe(4);
    expect(inconsistency(s)).toBeUndefined();
  });

  it('accuracy, per-class precision/recall/F1', () => {
    expect(m.accuracy).toBe(0.5);
    expect(m.perClass[0]).toEqual({ support: 2, precision: 0.5, recall: 0.5, f1: 0.5 });
    expect(m.perClass[1].precision).toBe(1);
    expect(m.perClass[1].recall).toBe(0.5);
    expect(m.perClass[1].f1).toBeCloseTo(2 / 3, 12);
    expect(m.perClass[2]).toEqual({ support: 0, precision: 0, recall: null, f1: null });
    expect(m.macroF1).toBeCloseTo((0.5 + 2 / 3) / 2, 12);
  });

  it('ECE = (|1 − 0.9| + |0 − 0.6| + |1 − 1.4|) / 4 = 0.275 (Guo et al. 2017 eq. 3)', () => {
    // bin 8: ex2 alone (acc 0, conf 0.6); bin 10: ex3 + ex4 (1 correct, Σconf 1.4); bin 13: ex1.
    expect(s.binCount[8]).toBe(1);
    expect(m.ece).toBeCloseTo(0.275, 4); // within the 2^-16 quantisation of each confidence
    expect(m.reliability[10]).toMatchObject({ count: 2, accuracy: 0.5 });
    expect(m.reliability[10].confidence).toBeCloseTo(0.7, 4);
  });

  it('Brier = (0.015 + 0.86 + 0.14 + 1.34) / 4 and NLL = −(ln .9 + ln .3 + ln .7 + ln .1) / 4', () => {
    expect(m.brier).toBeCloseTo(2.355 / 4, 4);
    expect(m.nll).toBeCloseTo(-(Math.log(0.9) + Math.log(0.3) + Math.log(0.7) + Math.log(0.1)) / 4, 4);
  });

  it('bins are ((m−1)/M, m/M]: the edges belong to the lower bin', () => {
    expect(binOf(1)).toBe(CALIBRATION_BINS - 1);
    expect(binOf(1e-9)).toBe(0);
    expect(binOf(3 / 15)).toBe(2);
    expect(binOf(3 / 15 + 1e-9)).toBe(3);
  });

  it('a perfectly calibrated bin contributes nothing; an empty evaluation has no metrics', () => {
    const t = addPredictions(emptyStats(2), [0.5, 0.5, 0.5, 0.5], [0, 1]);
    expect(metricsOf(t)!.ece).toBe(0);
    expect(metricsOf(emptyStats(2))).toBeUndefined();
  });
});

describe('evaluation statistics: consistency of a client report', () => {
  const honest = addPredictions(emptyStats(3), PROBS, LABELS);
  it.each<[string, (s: EvalStats) => void, RegExp]>([
    ['count off', (s) => (s.count = 5), /confusion matrix sums/],
    ['bins off', (s) => (s.binCount[0] += 1), /calibration bins count/],
    ['correct above count', (s) => { s.binCorrect[13] = 0; s.binCorrect[0] = 1; }, /correct of 0/],
    ['confidence outside bin', (s) => (s.binConfidence[13] = 1), /outside/],
    ['Brier too large', (s) => (s.brier = 10 * FIXED_POINT), /Brier/],
    ['NLL too large', (s) => (s.nll = 100 * FIXED_POINT), /NLL/],
  ])('%s', (_, mutate, why) => {
    const s = structuredClone(honest);
    mutate(s);
    expect(inconsistency(s)).toMatch(why);
  });

  it('the wire schema bounds sizes and values', () => {
    expect(EvalStatsSchema.safeParse(honest).success).toBe(true);
    expect(EvalStatsSchema.safeParse({ ...honest, numClasses: 101 }).success).toBe(false);
    expect(EvalStatsSchema.safeParse({ ...honest, confusion: honest.confusion.slice(1) }).success).toBe(false);
    expect(EvalStatsSchema.safeParse({ ...honest, nll: 1e300 }).success).toBe(false);
    expect(EvalStatsSchema.safeParse({ ...honest, brier: -1 }).success).toBe(false);
    expect(EvalStatsSchema.safeParse({ ...honest, brier: 0.5 }).success).toBe(false);
    expect(EvalStatsSchema.safeParse({ ...honest, binCount: [1, 2] }).success).toBe(false);
  });
});

/** Probability rows from small integers (softmax-like, strictly positive). */
const predictionArb = (K: number) =>
  fc.record({ weights: fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: K, maxLength: K }), label: fc.integer({ min: 0, max: K - 1 }), client: fc.integer({ min: 0, max: 6 }) });

describe('summed statistics are the pooled statistics (property)', () => {
  it('any split of the examples over clients, summed in any order, gives exactly the pooled metrics', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 6 }).chain((K) => fc.tuple(fc.constant(K), fc.array(predictionArb(K), { minLength: 1, maxLength: 80 }))),
        fc.integer(),
        ([K, examples], order) => {
          const probsOf = (w: number[]) => {
            const t = w.reduce((a, b) => a + b, 0);
            return w.map((x) => x / t);
          };
          const pooled = emptyStats(K);
          const clients = Array.from({ length: 7 }, () => emptyStats(K));
          for (const e of examples) {
            addPredictions(pooled, probsOf(e.weights), [e.label]);
            addPredictions(clients[e.client], probsOf(e.weights), [e.label]);
          }
          const shuffled = [...clients].sort((a, b) => ((a.count * 31 + order) % 7) - ((b.count * 31 + order) % 7));
          let sum = emptyStats(K);
          for (const c of shuffled) sum = addStats(sum, c);
          expect(sum).toEqual(pooled);
          expect(metricsOf(sum)).toEqual(metricsOf(pooled));
          for (const c of clients) expect(inconsistency(c)).toBeUndefined();
          // And the metrics match a direct computation on the raw pooled predictions (to quantisation).
          const direct = directMetrics(examples.map((e) => ({ p: probsOf(e.weights), y: e.label })));
          const m = metricsOf(sum)!;
          expect(m.accuracy).toBe(direct.accuracy);
          expect(Math.abs(m.ece - direct.ece)).toBeLessThan(1e-4);
          expect(Math.abs(m.brier - direct.brier)).toBeLessThan(1e-4);
          expect(Math.abs(m.nll - direct.nll)).toBeLessThan(1e-4);
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** A plain reference: ECE, Brier, NLL computed per example in float64, no bins kept as sums. */
function directMetrics(rows: { p: number[]; y: number }[]) {
  const bins = Array.from({ length: 15 }, () => ({ n: 0, correct: 0, conf: 0 }));
  let correct = 0;
  let brier = 0;
  let nll = 0;
  for (const { p, y } of rows) {
    const top = p.indexOf(Math.max(...p));
    const conf = p[top];
    const b = bins[Math.min(14, Math.max(0, Math.ceil(conf * 15) - 1))];
    b.n++;
    b.conf += conf;
    if (top === y) {
      b.correct++;
      correct++;
    }
    brier += p.reduce((a, pk, k) => a + (pk - (k === y ? 1 : 0)) ** 2, 0);
    nll -= Math.log(Math.max(1e-7, p[y]));
  }
  const n = rows.length;
  const ece = bins.reduce((a, b) => a + (b.n ? (b.n / n) * Math.abs(b.correct / b.n - b.conf / b.n) : 0), 0);
  return { accuracy: correct / n, ece, brier: brier / n, nll: nll / n };
}

describe('statistics through SecAgg', () => {
  it('the SecAgg sum of limb-encoded statistics decodes to exactly the survivors\' summed statistics', () => {
    const K = 10;
    const n = 12;
    const bits = 32;
    const stats = Array.from({ length: n }, (_, c) => {
      const s = emptyStats(K);
      const rows = 50 + c * 7;
      const probs: number[] = [];
      const labels: number[] = [];
      for (let r = 0; r < rows; r++) {
        const w = Array.from({ length: K }, (_, k) => 1 + ((r * 7 + k * 13 + c) % 17) ** 2);
        const t = w.reduce((a, b) => a + b, 0);
        probs.push(...w.map((x) => x / t));
        labels.push((r + c) % K);
      }
      addPredictions(s, probs, labels);
      // a large NLL sum, to exercise the upper limbs (client with many examples)
      s.nll += 2 ** 40;
      return s;
    });
    const params = findGraphParams({ clients: n, dropoutRate: 0.2, corruptRate: 0.05 });
    const sim = simulateRound({
      n,
      dim: statsWords(K),
      bits,
      neighbors: params.neighbors,
      threshold: params.threshold,
      minSurvivors: n - params.maxDropouts,
      drops: new Map([[3, 'collect']]),
      inputs: stats.map((s) => encodeStatsWords(s, bits)),
    });
    const r = sim.result;
    if (r.status !== 'ok') throw new Error(`SecAgg round did not complete: ${r.status}`);
    const included = sim.ids.map((id, i) => (r.included.includes(id) ? i : -1)).filter((i) => i >= 0);
    expect(included).not.toContain(3);
    const expected = included.map((i) => stats[i]).reduce((a, b) => addStats(a, b));
    const decoded = decodeStatsWords(r.sum, K, bits, included.length);
    expect(decoded).toEqual(expected);
    expect(metricsOf(decoded)).toEqual(metricsOf(expected));
  });

  it('refuses a cohort whose limb sums could wrap', () => {
    expect(maxClientsFor(32)).toBe(65537);
    expect(() => decodeStatsWords(new Uint32Array(statsWords(2)), 2, 20, 17)).toThrow(/could wrap/);
  });
});
