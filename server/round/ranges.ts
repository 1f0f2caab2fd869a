/**
 * Range checks on the numbers a client reports. The wire schemas admit any finite number; a value
 * that feeds an aggregate must also be *plausible*, or one client could overflow a sum to Infinity
 * (1e308 · examples) and fail the round's commit. Each check names the field and the bound; the
 * engine answers OUT_OF_RANGE, excludes the sender from the round and goes on.
 *
 * Why these bounds keep every aggregate finite: a round folds at most 10^6 members (the sampling
 * schema's cap), each contributing weight ≤ maxExamplesPerClient (≤ 2^40) times a value ≤ 10^12 in
 * magnitude; the float64 sums stay below 10^6 · 2^40 · 10^12 ≈ 10^30, far from 1.8·10^308.
 */
import { CohortError } from '../../shared/errors.ts';
import { ErrorCode, type EvalResult, type Hello, type Update } from '../../shared/protocol/index.ts';

export interface ValueLimits {
  /** numExamples of hello, update and eval_result. */
  maxExamplesPerClient: number;
  /** |loss| and |every metric| of update and eval_result. */
  maxMetricValue: number;
  /** |element| of a plain update vector. */
  maxUpdateValue: number;
}

export const VALUE_LIMITS: ValueLimits = {
  maxExamplesPerClient: 10_000_000,
  maxMetricValue: 1e6,
  maxUpdateValue: 1e6,
};

function outOfRange(message: string, details: Record<string, unknown>): CohortError {
  return new CohortError(ErrorCode.OUT_OF_RANGE, message, details);
}

function checkExamples(what: string, n: number | undefined, limits: ValueLimits): void {
  if (n !== undefined && n > limits.maxExamplesPerClient) {
    throw outOfRange(`${what}.numExamples ${n} exceeds limits.maxExamplesPerClient ${limits.maxExamplesPerClient}`, { field: 'numExamples' });
  }
}

function checkMetric(what: string, name: string, x: number, limits: ValueLimits): void {
  if (!(Math.abs(x) <= limits.maxMetricValue)) {
    throw outOfRange(`${what}.${name.slice(0, 64)} = ${x} is outside ±limits.maxMetricValue ${limits.maxMetricValue}`, { field: name.slice(0, 64) });
  }
  if (name === 'accuracy' && !(x >= 0 && x <= 1)) {
    throw outOfRange(`${what}.accuracy = ${x} is outside [0, 1]`, { field: 'accuracy' });
  }
}

export function checkHello(msg: Hello, limits: ValueLimits): void {
  checkExamples('hello', msg.numExamples, limits);
}

/** Throws OUT_OF_RANGE at the first implausible number of an update (metrics, examples, then vector). */
export function checkUpdate(msg: Update, limits: ValueLimits): void {
  checkExamples('update', msg.numExamples, limits);
  for (const [name, x] of Object.entries(msg.metrics)) checkMetric('update.metrics', name, x, limits);
  const v = msg.vector;
  const max = limits.maxUpdateValue;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x > max || x < -max) {
      throw outOfRange(`update.vector[${i}] = ${x} is outside ±limits.maxUpdateValue ${max}`, { field: 'vector', index: i });
    }
  }
}

export function checkEvalResult(msg: EvalResult, limits: ValueLimits): void {
  checkExamples('eval_result', msg.numExamples, limits);
  checkMetric('eval_result', 'loss', msg.loss, limits);
  checkMetric('eval_result', 'accuracy', msg.accuracy, limits);
}
