/**
 * Runs an experiment's `run(argv)` in-process with stdout captured, checks it exits 0, and returns the
 * last stdout line parsed as JSON (with --json, an experiment's summary). `onlyLine` also checks the
 * summary is the only line printed.
 */
import { expect, vi } from 'vitest';

export async function experimentSummary(
  run: (args: string[]) => Promise<number>,
  args: string[],
  opts: { onlyLine?: boolean } = {},
): Promise<Record<string, unknown> & { runDir: string }> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    expect(await run(args)).toBe(0);
  } finally {
    spy.mockRestore();
  }
  const text = lines.join('').trim().split('\n');
  if (opts.onlyLine) expect(text).toHaveLength(1);
  return JSON.parse(text.at(-1)!) as Record<string, unknown> & { runDir: string };
}
