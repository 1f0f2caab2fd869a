/** Flag readers shared by the benches: each names the bench and the flag in its error. */
export interface FlagReaders {
  /** A positive safe integer. */
  int(text: string, flag: string): number;
  /** A number satisfying `ok` (`what` says which, for the message). */
  num(text: string, flag: string, ok: (v: number) => boolean, what: string): number;
  /** A comma-separated list, blanks dropped. */
  list(text: string): string[];
  /** A comma-separated list of positive integers. */
  ints(text: string, flag: string): number[];
}

export function flagReaders(bench: string): FlagReaders {
  const num = (text: string, flag: string, ok: (v: number) => boolean, what: string): number => {
    const v = Number(text);
    if (text.trim() === '' || !ok(v)) throw new Error(`bench ${bench}: --${flag} must be ${what}, got "${text}"`);
    return v;
  };
  const int = (text: string, flag: string): number => num(text, flag, (v) => Number.isSafeInteger(v) && v > 0, 'a positive integer');
  const list = (text: string): string[] => text.split(',').map((s) => s.trim()).filter(Boolean);
  return { int, num, list, ints: (text, flag) => list(text).map((s) => int(s, flag)) };
}
