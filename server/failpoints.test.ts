import { describe, expect, it } from 'vitest';
import { failpointFromSpec } from './failpoints.ts';

describe('failpoints', () => {
  it('fire only at the named point (and round, when given)', () => {
    const hits: string[] = [];
    const fp = failpointFromSpec('commit:in-transaction@2', () => hits.push('die'));
    fp('commit:before', 2);
    fp('commit:in-transaction', 1);
    expect(hits).toEqual([]);
    fp('commit:in-transaction', 2);
    expect(hits).toEqual(['die']);
    const any = failpointFromSpec('train', () => hits.push('train'));
    any('train', 7);
    expect(hits).toEqual(['die', 'train']);
  });

  it('refuse an unknown name or a bad round instead of never firing', () => {
    expect(() => failpointFromSpec('comit:before')).toThrow(/unknown failpoint/);
    expect(() => failpointFromSpec('train@0')).toThrow(/positive integer/);
    expect(() => failpointFromSpec('train@x')).toThrow(/positive integer/);
  });
});
