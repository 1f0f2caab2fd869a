/**
 * Choosing the tfjs backend, once per process (tfjs backends are process-global).
 *
 * Order: `opts.prefer`, else env `COHORT_BACKEND`, else automatic: `@tensorflow/tfjs-node` (native
 * TensorFlow, optional dependency) → `@tensorflow/tfjs-backend-wasm` (XNNPACK, installs from npm
 * everywhere) → the pure-JS `cpu` backend. A forced backend that cannot load is an error, not a silent
 * fallback.
 *
 * Everything imports `@tensorflow/tfjs` from the same package so that the backend registered here is
 * the one the models use.
 *
 * On the wasm and cpu backends our training kernels (kernels.ts) replace or add tfjs kernels when the
 * backend is selected. `COHORT_STOCK_KERNELS=1` skips that, for benchmarking against stock tfjs only.
 *
 * Isomorphic: no static Node import. In Node, the environment variables are read from `process.env`
 * and the wasm binaries are located through node:module / node:path, loaded by dynamic import only when
 * `process.versions.node` says we run in Node; elsewhere tfjs-backend-wasm's own default applies.
 */
import * as tf from '@tensorflow/tfjs';
import { CohortError, ConfigError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import { installCpuKernels, installWasmKernels } from './kernels.ts';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** Accepted spellings for `COHORT_BACKEND` / `prefer`. */
const BACKEND_ALIASES: Record<string, BackendName> = {
  tensorflow: 'tensorflow',
  node: 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

/** A backend that was asked for (or is needed) and cannot be loaded. */
export class BackendUnavailableError extends CohortError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('BACKEND_UNAVAILABLE', message, details);
  }
}

let selection: Promise<BackendName> | undefined;
let current: BackendName | undefined;

/** The backend chosen by `selectBackend`, or undefined before it completed. */
export function currentBackend(): BackendName | undefined {
  return current;
}

/** Parses a backend name as written by a user; throws ConfigError listing the valid values. */
export function parseBackendName(value: string, source: string): BackendName {
  const name = BACKEND_ALIASES[value.trim().toLowerCase()];
  if (!name) {
    throw new ConfigError(
      `${source}: unknown backend '${value}'; valid values: ${Object.keys(BACKEND_ALIASES).join(', ')}`,
      { value },
    );
  }
  return name;
}

type Attempt = { ok: true } | { ok: false; why: string };

interface NodeProcess {
  versions?: { node?: string };
  env?: Record<string, string | undefined>;
}
const nodeProcess = (): NodeProcess | undefined => (globalThis as { process?: NodeProcess }).process;

/** An environment variable in Node; undefined elsewhere. */
function envVar(name: string): string | undefined {
  return nodeProcess()?.env?.[name];
}

const TFJS_NODE = '@tensorflow/tfjs-node';
const TFJS_WASM = '@tensorflow/tfjs-backend-wasm';

async function tryTensorflow(): Promise<Attempt> {
  try {
    // A variable specifier: the package is optional and may be absent at type-check and bundle time.
    const specifier: string = TFJS_NODE;
    await import(specifier);
  } catch (err) {
    return { ok: false, why: `${TFJS_NODE} not loadable: ${firstLine(err)}` };
  }
  if (!tf.findBackendFactory('tensorflow')) {
    return { ok: false, why: `${TFJS_NODE} loaded but registered with another copy of @tensorflow/tfjs` };
  }
  return activate('tensorflow');
}

type WasmModule = { setWasmPaths(prefix: string): void };

async function tryWasm(): Promise<Attempt> {
  let wasm: WasmModule;
  try {
    // A literal specifier, so bundlers (the browser build) include the package.
    const mod = (await import('@tensorflow/tfjs-backend-wasm')) as Partial<WasmModule> & { default?: WasmModule };
    wasm = typeof mod.setWasmPaths === 'function' ? (mod as WasmModule) : (mod.default as WasmModule);
  } catch (err) {
    return { ok: false, why: `${TFJS_WASM} not loadable: ${firstLine(err)}` };
  }
  try {
    // Point the loader at the package's own .wasm files explicitly, independent of the cwd.
    const dist = await nodeWasmDir();
    if (dist !== undefined) wasm.setWasmPaths(dist);
  } catch (err) {
    return { ok: false, why: `cannot locate the ${TFJS_WASM} binaries: ${firstLine(err)}` };
  }
  const attempt = await activate('wasm');
  if (attempt.ok && !stockKernels()) installWasmKernels();
  return attempt;
}

/** The directory of tfjs-backend-wasm's binaries (with a trailing separator) in Node; undefined elsewhere. */
async function nodeWasmDir(): Promise<string | undefined> {
  if (!nodeProcess()?.versions?.node) return undefined;
  // Variable specifiers: Node built-ins, loaded only in Node, invisible to the isomorphic typecheck and bundlers.
  const moduleId: string = 'node:module';
  const pathId: string = 'node:path';
  const { createRequire } = (await import(moduleId)) as { createRequire(url: string): { resolve(id: string): string } };
  const path = (await import(pathId)) as { dirname(p: string): string; sep: string };
  return path.dirname(createRequire(import.meta.url).resolve(TFJS_WASM)) + path.sep;
}

async function activate(name: BackendName): Promise<Attempt> {
  try {
    if (!(await tf.setBackend(name))) return { ok: false, why: `tfjs could not initialise backend '${name}'` };
    await tf.ready();
    return { ok: true };
  } catch (err) {
    return { ok: false, why: `backend '${name}' failed to initialise: ${firstLine(err)}` };
  }
}

/** Benchmark switch: run tfjs's own kernels only. */
function stockKernels(): boolean {
  return envVar('COHORT_STOCK_KERNELS') === '1';
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0];
}

const LOADERS: Record<BackendName, () => Promise<Attempt>> = {
  tensorflow: tryTensorflow,
  wasm: tryWasm,
  cpu: async () => {
    const attempt = await activate('cpu');
    if (attempt.ok && !stockKernels()) installCpuKernels();
    return attempt;
  },
};

async function selectForced(name: BackendName, source: string, logger: Logger): Promise<BackendName> {
  const attempt = await LOADERS[name]();
  if (!attempt.ok) {
    const hint = name === 'tensorflow' ? ` (install ${TFJS_NODE}, or use COHORT_BACKEND=wasm)` : '';
    throw new BackendUnavailableError(`backend '${name}' requested by ${source} is unavailable: ${attempt.why}${hint}`, {
      backend: name,
    });
  }
  logger.info({ backend: name, reason: `requested by ${source}` }, 'tfjs backend selected');
  return name;
}

async function selectAuto(logger: Logger): Promise<BackendName> {
  const skipped: string[] = [];
  for (const name of ['tensorflow', 'wasm', 'cpu'] as const) {
    const attempt = await LOADERS[name]();
    if (attempt.ok) {
      const reason = skipped.length === 0 ? 'automatic: first choice' : `automatic; skipped: ${skipped.join('; ')}`;
      logger.info({ backend: name, reason }, 'tfjs backend selected');
      return name;
    }
    skipped.push(attempt.why);
  }
  throw new BackendUnavailableError(`no tfjs backend could be initialised: ${skipped.join('; ')}`);
}

async function select(opts: { prefer?: string; logger?: Logger }): Promise<BackendName> {
  const logger = opts.logger ?? silentLogger;
  const fromEnv = envVar('COHORT_BACKEND')?.trim();
  if (opts.prefer) return selectForced(parseBackendName(opts.prefer, 'prefer option'), 'the prefer option', logger);
  if (fromEnv) return selectForced(parseBackendName(fromEnv, 'COHORT_BACKEND'), 'COHORT_BACKEND', logger);
  return selectAuto(logger);
}

/**
 * Selects and initialises the tfjs backend. Idempotent: later calls return the first call's result
 * without re-initialising (a differing `prefer` is logged and ignored). A failed selection can be retried.
 */
export async function selectBackend(opts: { prefer?: string; logger?: Logger } = {}): Promise<BackendName> {
  if (selection) {
    const chosen = await selection;
    if (opts.prefer && BACKEND_ALIASES[opts.prefer.trim().toLowerCase()] !== chosen) {
      (opts.logger ?? silentLogger).warn(
        { backend: chosen, requested: opts.prefer },
        'tfjs backend already selected for this process; ignoring the new preference',
      );
    }
    return chosen;
  }
  const pending = select(opts).then((name) => {
    current = name;
    return name;
  });
  selection = pending;
  pending.catch(() => {
    if (selection === pending) selection = undefined;
  });
  return pending;
}
