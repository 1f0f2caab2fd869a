/**
 * Plumbing of the hostile-input suite: the run's seed, an in-process coordinator with an in-memory pino
 * log, process level crash recorders, honest clients, and small async helpers. The tapping and raw
 * websocket connections are in tap.ts; the tally, the documented codes and the store check in checks.ts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startCoordinator, type Coordinator, type CoordinatorOptions } from '../../server/coordinator.ts';
import { parseJobConfig, type JobConfig } from '../../server/round/config.ts';
import type { Logger } from '../../shared/log.ts';
import { testIdentity } from '../support/identity.ts';
export type { Emit, Expect, HostileInput } from './types.ts';

// ---- seed -------------------------------------------------------------------------------------

/** The run's seed: COHORT_HOSTILE_SEED, or a random 32-bit one. Printed in every failure. */
export function hostileSeed(): number {
  const env = process.env.COHORT_HOSTILE_SEED;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`COHORT_HOSTILE_SEED must be a 32-bit unsigned integer, got ${env}`);
    return n;
  }
  return (Math.random() * 2 ** 32) >>> 0;
}

// ---- coordinator --------------------------------------------------------------------------------

export interface LogCapture {
  logger: Logger;
  /** Every line, when COHORT_HOSTILE_DEBUG is set. */
  all: string[];
  /** Lines at level ≥ 50 (error, fatal). */
  errors: string[];
  lines: number;
}

/** A pino logger writing JSON lines to memory. */
export function captureLogs(level = 'info'): LogCapture {
  const capture: LogCapture = { logger: undefined as unknown as Logger, errors: [], all: [], lines: 0 };
  const debug = !!process.env.COHORT_HOSTILE_DEBUG;
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        capture.lines++;
        if (debug) capture.all.push(line);
        const m = /"level":(\d+)/.exec(line);
        if (m && Number(m[1]) >= 50 && capture.errors.length < 200) capture.errors.push(line.slice(0, 2000));
      }
      cb();
    },
  });
  capture.logger = pino({ level }, stream) as unknown as Logger;
  return capture;
}

/** Records uncaught exceptions and unhandled rejections while installed. */
export function crashRecorder(): { events: string[]; uninstall(): void } {
  const events: string[] = [];
  const onException = (err: unknown) => events.push(`uncaughtException: ${(err as Error)?.stack ?? String(err)}`);
  const onRejection = (err: unknown) => events.push(`unhandledRejection: ${(err as Error)?.stack ?? String(err)}`);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return {
    events,
    uninstall() {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
    },
  };
}

export interface Job {
  coordinator: Coordinator;
  config: JobConfig;
  dataDir: string;
  logs: LogCapture;
}

export async function startJob(raw: Record<string, unknown>, extra: Partial<CoordinatorOptions> = {}): Promise<Job> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cohort-hostile-'));
  const config = parseJobConfig(raw);
  const logs = captureLogs();
  const coordinator = await startCoordinator({ config, dataDir, logger: logs.logger, ...extra });
  return { coordinator, config, dataDir, logs };
}

// ---- honest clients -----------------------------------------------------------------------------

/** A cheap, deterministic task: a small fixed delta and sane metrics, no tfjs. */
export class CheapTask implements ClientTask {
  /** If set, fit waits for it (keeps a job running while hostile inputs are sent). */
  gate?: (round: number) => Promise<void>;
  constructor(
    private readonly dim: number,
    private readonly index: number,
    readonly numExamples = 20,
  ) {}
  async fit(_w: Float32Array, _m: unknown, _t: unknown, round: number) {
    await this.gate?.(round);
    const delta = Float32Array.from({ length: this.dim }, (_, j) => 0.01 * Math.sin(j + this.index + round));
    return { delta, numExamples: this.numExamples, metrics: { loss: 0.5 + 0.01 * this.index, accuracy: 0.75 } };
  }
  async evaluate() {
    return { numExamples: 10, loss: 0.6, accuracy: 0.7 };
  }
}

export interface HonestClient {
  engine: ClientEngine;
  task: CheapTask;
  ended: Promise<{ status: string; rounds: number }>;
  included: number;
  errors: string[];
}

/** An honest client over the real client transport. */
export function honestClient(url: string, clientId: string, dim: number, index: number): HonestClient {
  const task = new CheapTask(dim, index);
  const transport = new SocketIoClientTransport({ url, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } });
  const engine = new ClientEngine({ clientId, identity: testIdentity(clientId), task, transport });
  const client: HonestClient = { engine, task, ended: engine.whenJobEnds(), included: 0, errors: [] };
  engine.on('roundResult', (r) => {
    if (r.included) client.included++;
  });
  engine.on('serverError', (e) => client.errors.push(`${e.code}: ${e.message.slice(0, 200)}`));
  engine.start();
  return client;
}

/** Resolves with `p`, or rejects after `ms` with `what`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

/** Runs `tasks` with at most `limit` in flight. */
export async function pool<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await run(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
