import { describe, expect, it } from 'vitest';
import { rdpOfEvent } from './accountant.ts';
import {
  type DpEvent,
  DpEventSchema,
  composedEvent,
  gaussianEvent,
  poissonSampledEvent,
  sampledWithoutReplacementEvent,
  selfComposedEvent,
} from './events.ts';

describe('DpEvent', () => {
  const ledger: DpEvent[] = [
    gaussianEvent(1.2),
    poissonSampledEvent(0.01, gaussianEvent(1.1)),
    poissonSampledEvent(0.01, composedEvent([gaussianEvent(1.2), gaussianEvent(10)])),
    selfComposedEvent(poissonSampledEvent(0.02, gaussianEvent(0.9)), 40),
    sampledWithoutReplacementEvent(100, 10000, gaussianEvent(0.6)),
    composedEvent([selfComposedEvent(gaussianEvent(3), 2), composedEvent([])]),
  ];

  it('round-trips through JSON and the schema unchanged, and analyses the same', () => {
    for (const event of ledger) {
      const parsed = DpEventSchema.parse(JSON.parse(JSON.stringify(event)));
      expect(parsed).toEqual(event);
    }
    const e = ledger[3];
    expect(rdpOfEvent(DpEventSchema.parse(JSON.parse(JSON.stringify(e))))).toEqual(rdpOfEvent(e));
  });

  it('constructors return frozen values', () => {
    const e = composedEvent([gaussianEvent(1)]);
    expect(Object.isFrozen(e)).toBe(true);
    expect(Object.isFrozen(e.events)).toBe(true);
  });

  it('rejects malformed ledger entries with a path and a message', () => {
    const bad: Array<[unknown, string]> = [
      [{ kind: 'gaussian', noiseMultiplier: -1 }, 'noiseMultiplier must be ≥ 0'],
      [{ kind: 'poissonSampled', samplingProbability: 1.5, event: { kind: 'gaussian', noiseMultiplier: 1 } }, 'samplingProbability must be in [0, 1]'],
      [{ kind: 'sampledWithoutReplacement', sampleSize: 11, sourceSize: 10, event: { kind: 'gaussian', noiseMultiplier: 1 } }, 'sampleSize must not exceed sourceSize'],
      [{ kind: 'selfComposed', count: 2.5, event: { kind: 'gaussian', noiseMultiplier: 1 } }, 'count must be an integer'],
      [{ kind: 'composed', events: [{ kind: 'laplace', scale: 1 }] }, ''],
      [{ kind: 'gaussian', noiseMultiplier: 1, extra: true }, ''],
    ];
    for (const [value, message] of bad) {
      const r = DpEventSchema.safeParse(value);
      expect(r.success, JSON.stringify(value)).toBe(false);
      if (message) expect(r.error?.issues.map((i) => i.message).join('; ')).toContain(message);
    }
    const nested = DpEventSchema.safeParse({
      kind: 'selfComposed',
      count: 3,
      event: { kind: 'poissonSampled', samplingProbability: 2, event: { kind: 'gaussian', noiseMultiplier: 1 } },
    });
    expect(nested.error?.issues[0].path).toEqual(['event', 'samplingProbability']);
  });
});
