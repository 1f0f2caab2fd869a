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
import { inconsistency, PER_EXAMPLE_MAX, type HealthRequest } from '../../shared/evaluation/index.ts';

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

/**
 * Throws OUT_OF_RANGE unless `msg.health` is statistics an honest client could have sent for this
 * request: asked for, for the job's class count, for exactly `numExamples` examples, internally
 * consistent (shared/evaluation `inconsistency`), temperature NLLs one per asked T within −ln 1e-7 per
 * example, a drift sketch of the asked shape counting every example once per feature.
 */
export function checkEvalHealth(msg: EvalResult, request: HealthRequest | undefined, numClasses: number | undefined): void {
  const h = msg.health;
  if (!h) return;
  const fail = (what: string) => {
    throw outOfRange(`eval_result.health: ${what}`.slice(0, 512), { field: 'health' });
  };
  if (!request) fail('statistics were not asked for');
  const req = request!;
  const n = msg.numExamples;
  for (const [name, s] of [['stats', h.stats], ['calibrated', h.calibrated]] as const) {
    if (!s) continue;
    if (numClasses !== undefined && s.numClasses !== numClasses) fail(`${name} of ${s.numClasses} classes, the model has ${numClasses}`);
    const expected = Math.min(n, req.maxExamples ?? Infinity);
    if (s.count !== expected) fail(`${name} count ${s.count} is not ${req.maxExamples === undefined ? 'numExamples' : 'min(numExamples, maxExamples)'} ${expected}`);
    const why = inconsistency(s);
    if (why) fail(`${name}: ${why}`);
  }
  if (h.calibrated && req.temperature === undefined) fail('calibrated statistics were not asked for');
  const temps = req.temperatures ?? [];
  if (h.temperatureNll) {
    if (h.temperatureNll.length !== temps.length) fail(`${h.temperatureNll.length} temperature NLLs for ${temps.length} temperatures`);
    h.temperatureNll.forEach((x, i) => {
      if (x > PER_EXAMPLE_MAX.nll * h.stats.count) fail(`temperatureNll[${i}] ${x} above −ln 1e-7 per example`);
    });
  }
  if (h.drift) {
    const b = req.drift;
    if (!b) fail('a drift sketch was not asked for');
    if (h.drift.labels.length !== h.stats.numClasses) fail(`drift labels of ${h.drift.labels.length} classes, statistics of ${h.stats.numClasses}`);
    const total = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
    if (total(h.drift.labels) !== h.stats.count) fail(`drift labels count ${total(h.drift.labels)} examples, not ${h.stats.count}`);
    if (h.drift.features.length !== b!.bands) fail(`${h.drift.features.length} drift features, ${b!.bands} asked`);
    h.drift.features.forEach((f, i) => {
      if (f.length !== b!.bins) fail(`drift feature ${i} has ${f.length} bins, ${b!.bins} asked`);
      if (total(f) !== h.stats.count) fail(`drift feature ${i} counts ${total(f)} examples, not ${h.stats.count}`);
    });
  }
}
