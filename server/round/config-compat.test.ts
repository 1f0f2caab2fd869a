/**
 * A job created by an older build resumes when its stored config differs from today's only by fields
 * added since (filled with their defaults); a config that really changed is still refused.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log.ts';
import { CohortStore } from '../store/index.ts';
import { JobModel } from './commit.ts';
import { configHash, parseJobConfig } from './config.ts';

const stores: CohortStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

describe('configs written by an older build', () => {
  const input = { id: 'old', model: { zoo: 'logreg' as const, inputShape: [4], numClasses: 2 }, rounds: 3 };

  function storeWithOldJob() {
    const store = CohortStore.open(mkdtempSync(join(tmpdir(), 'cohort-compat-')));
    stores.push(store);
    // What an older build stored: today's parsed config without a field added since.
    const today = parseJobConfig(input);
    const { unaccountedMetrics: _added, ...evaluation } = today.evaluation;
    const older = { ...today, evaluation };
    store.createJob({ id: 'old', config: older, configHash: configHash(older as typeof today) });
    return store;
  }

  it('resume when only new fields (with their defaults) differ', () => {
    const store = storeWithOldJob();
    expect(store.getJob('old')!.configHash).not.toBe(configHash(parseJobConfig(input)));
    expect(JobModel.load(parseJobConfig(input), store, silentLogger).job.id).toBe('old');
  });

  it('are still refused when the config really changed', () => {
    const store = storeWithOldJob();
    expect(() => JobModel.load(parseJobConfig({ ...input, rounds: 4 }), store, silentLogger)).toThrow(expect.objectContaining({ code: 'CONFIG_CHANGED' }));
  });
});
