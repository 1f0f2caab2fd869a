import { describe, expect, it } from 'vitest';
import { erfc, log1mExp, logAddExp, logErfc, logExpm1, logSumExp, normalCdf } from './special.ts';

// Reference values computed with mpmath 1.3 at 60 significant digits (mpmath.erfc, mpmath.log).
const ERFC: ReadonlyArray<readonly [number, number]> = [
  [-3, 1.9999779095030014146],
  [-0.5, 1.5204998778130465377],
  [0, 1.0],
  [0.001, 0.99887162120903076362],
  [0.5, 0.47950012218695346232],
  [1, 0.15729920705028513066],
  [1.4999, 0.033906748337704730688],
  [1.5, 0.033894853524689272933],
  [2, 0.0046777349810472658379],
  [3, 0.000022090496998585441373],
  [5, 1.5374597944280348502e-12],
  [10, 2.088487583762544757e-45],
  [26, 5.6631924088561428465e-296],
];

const LOG_ERFC_TAIL: ReadonlyArray<readonly [number, number]> = [
  [30, -903.97411711064387808],
  [100, -10005.177585122664333],
  [1000, -1000007.4801207219062],
];

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

describe('erfc', () => {
  it('matches 60-digit references to 2e-15 relative on both sides of the series/fraction switch', () => {
    for (const [x, want] of ERFC) {
      expect(rel(erfc(x), want), `erfc(${x})`).toBeLessThan(2e-15);
      expect(Math.abs(logErfc(x) - Math.log(want)), `logErfc(${x})`).toBeLessThan(2e-15 * Math.max(1, Math.abs(Math.log(want))));
    }
  });

  it('keeps log erfc finite and accurate far in the tail, where erfc underflows', () => {
    for (const [x, want] of LOG_ERFC_TAIL) {
      expect(erfc(x)).toBe(0);
      expect(rel(logErfc(x), want)).toBeLessThan(1e-15);
    }
    expect(logErfc(Infinity)).toBe(-Infinity);
  });

  it('Φ is the standard normal CDF', () => {
    expect(normalCdf(0)).toBe(0.5);
    expect(rel(normalCdf(1.959963984540054), 0.975)).toBeLessThan(1e-15);
    expect(rel(normalCdf(-1), 0.15865525393145705)).toBeLessThan(1e-14);
  });
});

describe('log-space arithmetic', () => {
  it('logAddExp is exact at the infinities and stable for far-apart arguments', () => {
    expect(logAddExp(-Infinity, 3)).toBe(3);
    expect(logAddExp(3, -Infinity)).toBe(3);
    expect(logAddExp(Infinity, 1)).toBe(Infinity);
    expect(logAddExp(1000, 1000)).toBeCloseTo(1000 + Math.LN2, 12);
    expect(logAddExp(0, -800)).toBe(0);
  });

  it('log1mExp, logExpm1 and logSumExp agree with direct formulas where those are accurate', () => {
    for (const x of [1e-10, 0.1, 0.5, Math.LN2, 1, 5]) {
      expect(rel(log1mExp(x), Math.log(-Math.expm1(-x)))).toBeLessThan(1e-14);
    }
    expect(rel(log1mExp(40), -Math.exp(-40))).toBeLessThan(1e-15); // log(1 − e^{−40}) ≈ −e^{−40}
    for (const x of [1e-10, 0.1, 0.5, Math.LN2, 1, 5, 40]) {
      expect(Math.abs(logExpm1(x) - Math.log(Math.expm1(x)))).toBeLessThan(1e-14 * Math.max(1, Math.abs(Math.log(Math.expm1(x)))));
    }
    expect(logExpm1(800)).toBeCloseTo(800, 12);
    expect(logSumExp([1000, 1000, 1000])).toBeCloseTo(1000 + Math.log(3), 12);
    expect(logSumExp([-Infinity, -Infinity])).toBe(-Infinity);
  });
});
