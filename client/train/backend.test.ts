// Backend selection is once per process; this file's tests run in order and share that state.
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../shared/log.ts';
import { currentBackend, parseBackendName, selectBackend } from './backend.ts';

function recordingLogger(): { logger: Logger; lines: { level: string; obj: object; msg?: string }[] } {
  const lines: { level: string; obj: object; msg?: string }[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return { logger, lines };
}

function tfjsNodeInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

afterEach(() => {
  delete process.env.COHORT_BACKEND;
});

describe('backend names', () => {
  it('accepts the documented spellings', () => {
    expect(parseBackendName('node', 'x')).toBe('tensorflow');
    expect(parseBackendName('TensorFlow', 'x')).toBe('tensorflow');
    expect(parseBackendName(' wasm ', 'x')).toBe('wasm');
    expect(parseBackendName('cpu', 'x')).toBe('cpu');
  });
});

describe('selectBackend', () => {
  it('rejects an unknown COHORT_BACKEND with a ConfigError listing the valid values', async () => {
    process.env.COHORT_BACKEND = 'gpu';
    const err = await selectBackend().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BAD_CONFIG' });
    expect((err as Error).message).toMatch(/gpu.*tensorflow, node, wasm, cpu/);
    expect(currentBackend()).toBeUndefined();
  });

  it.skipIf(tfjsNodeInstalled())('fails clearly when the forced tensorflow backend is not installed', async () => {
    process.env.COHORT_BACKEND = 'tensorflow';
    await expect(selectBackend()).rejects.toMatchObject({
      code: 'BACKEND_UNAVAILABLE',
      message: expect.stringContaining('@tensorflow/tfjs-node'),
    });
    expect(currentBackend()).toBeUndefined();
  });

  it('honours COHORT_BACKEND, logs the choice, and is idempotent', async () => {
    process.env.COHORT_BACKEND = 'wasm';
    const { logger, lines } = recordingLogger();
    expect(await selectBackend({ logger })).toBe('wasm');
    expect(currentBackend()).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(lines).toEqual([{ level: 'info', obj: { backend: 'wasm', reason: 'requested by COHORT_BACKEND' }, msg: expect.any(String) }]);

    delete process.env.COHORT_BACKEND;
    const again = recordingLogger();
    expect(await selectBackend({ prefer: 'cpu', logger: again.logger })).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(again.lines.map((l) => l.level)).toEqual(['warn']);
    expect(again.lines.some((l) => l.level === 'info')).toBe(false);
  });
});
