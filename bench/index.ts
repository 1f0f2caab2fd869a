/**
 * `npm run bench -- <name> [--flags]`: runs bench/<name>.ts. To add a benchmark, write a module exporting
 * `run(args: string[]): Promise<void>` and register it below.
 */
export interface Benchmark {
  run(args: string[]): Promise<void>;
}

const BENCHMARKS: Record<string, () => Promise<Benchmark>> = {
  aggregate: () => import('./aggregate.ts'),
  train: () => import('./train.ts'),
  secagg: () => import('./secagg.ts'),
  load: () => import('./load.report.ts'),
  admin: () => import('./admin.ts'),
  auth: () => import('./auth.ts'),
  dashboard: () => import('./dashboard.ts'),
  browser: () => import('./browser.ts'),
  device: () => import('./device.ts'),
  sim: () => import('./sim.ts'),
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const load = name !== undefined && Object.hasOwn(BENCHMARKS, name) ? BENCHMARKS[name] : undefined;
  if (!load) {
    process.stderr.write(
      `${name === undefined ? 'no benchmark given' : `unknown benchmark "${name}"`}\n` +
        `usage: npm run bench -- <name> [--flags]\navailable: ${Object.keys(BENCHMARKS).join(', ')}\n`,
    );
    return 2;
  }
  await (await load()).run(rest);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
