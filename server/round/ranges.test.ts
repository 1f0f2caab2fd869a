import { describe, expect, it } from 'vitest';
import { CohortError } from '../../shared/errors.ts';
import { boundText, MAX_ERROR_MESSAGE_CHARS, PROTOCOL_VERSION, type EvalResult, type Hello, type Update } from '../../shared/protocol/index.ts';
import { checkEvalResult, checkHello, checkUpdate, VALUE_LIMITS } from './ranges.ts';

const L = VALUE_LIMITS;
const HELLO: Hello = { type: 'hello', protocolVersion: PROTOCOL_VERSION, clientId: 'c', publicKey: 'A'.repeat(43), signature: 'A'.repeat(86), server: 'plaintext' };
const update = (over: Partial<Update> = {}): Update => ({
  type: 'update',
  jobId: 'j',
  round: 1,
  numExamples: 10,
  metrics: { loss: 1, accuracy: 0.5 },
  vector: Float32Array.of(0, -1, 1),
  ...over,
});
const evalResult = (over: Partial<EvalResult> = {}): EvalResult => ({ type: 'eval_result', jobId: 'j', round: 1, numExamples: 5, loss: 1, accuracy: 1, ...over });

function code(fn: () => void): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CohortError ? e.code : 'not a CohortError';
  }
  return undefined;
}

describe('range checks on client reports', () => {
  it('accept values at the bounds and refuse the next ones with OUT_OF_RANGE', () => {
    expect(code(() => checkUpdate(update({ numExamples: L.maxExamplesPerClient }), L))).toBeUndefined();
    expect(code(() => checkUpdate(update({ numExamples: L.maxExamplesPerClient + 1 }), L))).toBe('OUT_OF_RANGE');
    expect(code(() => checkUpdate(update({ metrics: { loss: -L.maxMetricValue } }), L))).toBeUndefined();
    expect(code(() => checkUpdate(update({ metrics: { loss: 1e308 } }), L))).toBe('OUT_OF_RANGE');
    expect(code(() => checkUpdate(update({ metrics: { custom: -1e7 } }), L))).toBe('OUT_OF_RANGE');
    expect(code(() => checkUpdate(update({ metrics: { accuracy: 1.0000001 } }), L))).toBe('OUT_OF_RANGE');
    expect(code(() => checkUpdate(update({ metrics: { accuracy: -0 } }), L))).toBeUndefined();
    expect(code(() => checkUpdate(update({ vector: Float32Array.of(0, L.maxUpdateValue, -L.maxUpdateValue) }), L))).toBeUndefined();
    expect(code(() => checkUpdate(update({ vector: Float32Array.of(0, 3.4e38) }), L))).toBe('OUT_OF_RANGE');
    expect(code(() => checkEvalResult(evalResult({ loss: 1e308 }), L))).toBe('OUT_OF_RANGE');
    expect(code(() => checkEvalResult(evalResult({ numExamples: 2 ** 40 }), L))).toBe('OUT_OF_RANGE');
    expect(code(() => checkEvalResult(evalResult(), L))).toBeUndefined();
    expect(code(() => checkHello({ ...HELLO, numExamples: 2 ** 40 }, L))).toBe('OUT_OF_RANGE');
    expect(code(() => checkHello(HELLO, L))).toBeUndefined();
  });

  it('name the field and the bound, in a bounded message', () => {
    try {
      checkUpdate(update({ metrics: { ['k'.repeat(5000)]: 1e300 } }), L);
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toMatch(/^update\.metrics\.k{64} = 1e\+300 is outside ±limits\.maxMetricValue 1000000$/);
    }
  });

  it('boundText keeps short texts and cuts long ones to the limit, saying how much was cut', () => {
    expect(boundText('short')).toBe('short');
    const cut = boundText('x'.repeat(10_000));
    expect(cut.length).toBe(MAX_ERROR_MESSAGE_CHARS);
    expect(cut).toMatch(/… \(\d+ more characters\)$/);
    expect(Number(/\((\d+) more/.exec(cut)![1]) + cut.indexOf('…')).toBe(10_000);
  });
});
