/** Shared plumbing for the multi-process tests: the `cohort` binary, free ports, JSON log lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/cohort.mjs');

/**
 * Where `cohort client` processes of this test file keep their identity files (COHORT_HOME), instead of
 * the user's ~/.cohort: a client id keeps its key across restarts within the file, as a device would.
 */
export const TEST_HOME = mkdtempSync(join(tmpdir(), 'cohort-home-'));

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Runs `cohort ARGS` to completion. */
export function cohort(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, COHORT_HOME: TEST_HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => res({ code, stdout, stderr }));
  });
}

export interface LogLine {
  msg?: string;
  round?: number;
  checksum?: string;
  [k: string]: unknown;
}

export interface StartServerOptions {
  /** Extra environment for the child (e.g. COHORT_FAILPOINT); merged over this process's. */
  env?: Record<string, string>;
}

/** A child process whose stdout is JSON lines, exposed as they arrive. */
export interface JsonLinesChild<L> {
  child: ChildProcess;
  lines: L[];
  exited: Promise<number | null>;
  /** Exit code and signal (a SIGKILLed child has code null, signal 'SIGKILL'). */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
  waitFor(match: (l: L) => boolean, ms?: number): Promise<L>;
}

/** Spawns `node ARGS` (in the repo root) and collects its JSON stdout lines; non-JSON lines are skipped. */
export function spawnJsonLines<L>(nodeArgs: string[], env: Record<string, string> = {}): JsonLinesChild<L> {
  const child = spawn(process.execPath, nodeArgs, { cwd: ROOT, env: { ...process.env, COHORT_HOME: TEST_HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: L[] = [];
  const waiters: { match: (l: L) => boolean; resolve: (l: L) => void }[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: L;
    try {
      line = JSON.parse(text);
    } catch {
      return;
    }
    lines.push(line);
    for (const w of waiters.splice(0)) (w.match(line) ? w.resolve(line) : waiters.push(w));
  });
  // 'close' (not 'exit'): every stdout line has been read by then.
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => r({ code, signal })),
  );
  const exited = exit.then((e) => e.code);
  return {
    child,
    lines,
    exited,
    exit,
    stderr: () => stderr,
    waitFor(match, ms = 60_000) {
      const hit = lines.find(match);
      if (hit) return Promise.resolve(hit);
      return new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`timed out; stderr: ${stderr}`)), ms);
        waiters.push({ match, resolve: (l) => (clearTimeout(timer), res(l)) });
      });
    },
  };
}

/** Starts `cohort server ARGS` and exposes its JSON log lines as they arrive. */
export function startServer(args: string[], opts: StartServerOptions = {}): JsonLinesChild<LogLine> {
  return spawnJsonLines<LogLine>([BIN, 'server', ...args], opts.env);
}
