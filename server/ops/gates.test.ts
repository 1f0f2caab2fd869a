import { describe, expect, it } from 'vitest';
import { parseJobConfig } from '../round/config.ts';
import { checkGates } from './gates.ts';

const promote = (p: Record<string, unknown>) => parseJobConfig({ id: 'g', model: { zoo: 'logreg', inputShape: [4], numClasses: 2 }, rounds: 1, promote: p }).promote;

describe('promotion gates', () => {
  it('pass only when every gate set is met; unset gates are not checked', () => {
    const gates = promote({ minAccuracy: 0.9, maxLoss: 0.5, maxEpsilon: 8 });
    expect(checkGates(gates, { evaluation: { accuracy: 0.91, loss: 0.4 }, epsilon: 7.9 }).passed).toBe(true);
    const r = checkGates(gates, { evaluation: { accuracy: 0.89, loss: 0.4 }, epsilon: 8.1 });
    expect(r.passed).toBe(false);
    expect(r.results.filter((g) => !g.passed).map((g) => g.gate)).toEqual(['minAccuracy', 'maxEpsilon']);
    expect(checkGates(promote({}), { evaluation: null, epsilon: null })).toEqual({ passed: true, results: [] });
  });

  it('fail a gate whose metric the version lacks (not evaluated, not DP)', () => {
    const r = checkGates(promote({ minAccuracy: 0.5, maxEpsilon: 10 }), { evaluation: null, epsilon: null });
    expect(r.passed).toBe(false);
    expect(r.results).toEqual([
      { gate: 'minAccuracy', limit: 0.5, value: null, passed: false },
      { gate: 'maxEpsilon', limit: 10, value: null, passed: false },
    ]);
  });

  it('are validated in the job config', () => {
    expect(() => promote({ minAccuracy: 1.5 })).toThrow(/promote\.minAccuracy/);
    expect(() => promote({ sometimes: true })).toThrow(/promote/);
    expect(promote({}).auto).toBe(false);
  });
});
