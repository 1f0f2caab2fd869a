import { ConfigError } from '../shared/errors.ts';
import { DEMO_DEFAULTS, runDemo, type DemoOptions } from '../simulations/demo.ts';
import { createLogger, type LogLevel } from './log.ts';

export interface DemoCommandOptions {
  rounds?: string;
  clients?: string;
  epochs?: string;
  batchSize?: string;
  lr?: string;
  seed?: string;
  trainSize?: string;
  testSize?: string;
  dataDir?: string;
  backend?: string;
  dp?: string;
  secagg?: boolean;
  noise?: string;
  clip?: string;
  budget?: string;
  delta?: string;
  logLevel: LogLevel;
}

function num(value: string | undefined, flag: string, fallback: number, integer = true): number {
  if (value === undefined) return fallback;
  const x = Number(value);
  if (!Number.isFinite(x) || x <= 0 || (integer && !Number.isInteger(x))) {
    throw new ConfigError(`--${flag} must be a positive ${integer ? 'integer' : 'number'}, got ${value}`);
  }
  return x;
}

function parseDp(o: DemoCommandOptions): DemoOptions['dp'] {
  const mode = o.dp ?? 'off';
  if (mode !== 'off' && mode !== 'central' && mode !== 'local' && mode !== 'distributed') {
    throw new ConfigError(`--dp must be off, central, local or distributed, got ${mode}`);
  }
  if (mode === 'distributed' && !o.secagg) {
    throw new ConfigError("--dp distributed needs secure aggregation: add --secagg (each client's noise is only safe inside the masked sum)");
  }
  if (mode === 'off') {
    if (o.noise ?? o.budget ?? (o.secagg ? undefined : o.clip)) {
      throw new ConfigError('--noise, --clip and --budget need --dp central, local or distributed');
    }
    return undefined;
  }
  const delta = o.delta === undefined ? 1e-5 : Number(o.delta);
  if (!(delta > 0 && delta < 1)) throw new ConfigError(`--delta must be in (0, 1), got ${o.delta}`);
  return {
    mode,
    noiseMultiplier: num(o.noise, 'noise', 1, false),
    clipNorm: num(o.clip, 'clip', 1, false),
    budget: o.budget === undefined ? undefined : num(o.budget, 'budget', 1, false),
    delta,
  };
}

/** `cohort demo`: progress lines on stdout, logs on stderr, a JSON summary as the last stdout line. */
export async function demoCommand(o: DemoCommandOptions): Promise<number> {
  const logger = createLogger(o.logLevel, 2);
  const d = DEMO_DEFAULTS;
  const opts: DemoOptions = {
    ...d,
    rounds: num(o.rounds, 'rounds', d.rounds),
    clients: num(o.clients, 'clients', d.clients),
    epochs: num(o.epochs, 'epochs', d.epochs),
    batchSize: num(o.batchSize, 'batch-size', d.batchSize),
    learningRate: num(o.lr, 'lr', d.learningRate, false),
    seed: num(o.seed, 'seed', d.seed),
    trainSize: num(o.trainSize, 'train-size', d.trainSize),
    testSize: num(o.testSize, 'test-size', d.testSize),
    dataDir: o.dataDir,
    backend: o.backend,
    dp: parseDp(o),
    secagg: o.secagg ?? false,
    ...(o.secagg && o.clip !== undefined && (o.dp ?? 'off') === 'off' ? { secaggClipNorm: num(o.clip, 'clip', 1, false) } : {}),
  };
  const result = await runDemo(opts, logger, (line) => process.stdout.write(`${line}\n`));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}
