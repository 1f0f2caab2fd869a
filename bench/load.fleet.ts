/**
 * The load bench's client fleet: forks one load-generator process (bench/load.generator.ts) and
 * follows its IPC reports (ready, welcome progress, stats) through a GeneratorHandle.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GeneratorStats, LoadGeneratorReport } from './load.generator.ts';

const GENERATOR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'load.generator.ts');

export interface GeneratorHandle {
  child: ChildProcess;
  count: number;
  welcomed: number;
  allWelcomed: Promise<void>;
  stats: Promise<GeneratorStats>;
  exited: Promise<void>;
}

export function forkGenerator(count: number, onProgress: () => void): { handle: GeneratorHandle; ready: Promise<void> } {
  const tsx = import.meta.resolve('tsx');
  const child = fork(GENERATOR, [], { execArgv: ['--import', tsx], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let ready!: () => void;
  let welcomed!: () => void;
  let gotStats!: (s: GeneratorStats) => void;
  let failed!: (err: Error) => void;
  const readyP = new Promise<void>((r) => (ready = r));
  const statsP = new Promise<GeneratorStats>((res, rej) => {
    gotStats = res;
    failed = rej;
  });
  const handle: GeneratorHandle = {
    child,
    count,
    welcomed: 0,
    allWelcomed: new Promise<void>((r) => (welcomed = r)),
    stats: statsP,
    exited: new Promise<void>((r) => child.once('close', () => r())),
  };
  statsP.catch(() => {});
  child.on('message', (report: LoadGeneratorReport) => {
    if (report.type === 'ready') ready();
    else if (report.type === 'progress') {
      handle.welcomed = report.welcomed;
      onProgress();
    } else if (report.type === 'all-welcomed') {
      handle.welcomed = report.welcomed;
      onProgress();
      welcomed();
    } else if (report.type === 'stats') {
      gotStats(report);
      child.disconnect();
    }
  });
  // 'close' comes after the IPC channel closed, so after every message the child sent was delivered.
  child.once('close', (code, signal) => failed(new Error(`load generator exited (${code ?? signal}) before reporting`)));
  return { handle, ready: readyP };
}
