/**
 * A population of virtual clients larger than memory holds as clients (issue 20). What each member
 * costs between rounds is its open in-memory connection (the coordinator must see it to sample it, as
 * it sees a connected device) and a few bytes of compact state; its client engine, its task and its
 * data exist only while it takes part in something:
 *
 *   parked ──a message on its connection (train, evaluate, a new connection's challenge)──▶ awake
 *   (a ClientEngine resumed idle in the job it joined) ──round_result / welcome / job_end, engine
 *   quiescent──▶ parked;  parked ──job_end──▶ parked, the end recorded (an idle engine does no more)
 *
 * A woken engine is the real client engine in the state the parked one was in (idle in its job, same
 * identity key, same connection), so every round runs the protocol a deployed client runs: privacy
 * floor, SecAgg phases, hello again after a dropout. Its data is a view of one shared data set (rows
 * named to the pool, gathered in the worker for that task) or generated when asked for (synthetic).
 */
import type { Dataset } from '../../client/data/dataset.ts';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import type { DatasetRows, TrainingPool } from '../../client/node/pool.ts';
import type { MemoryClientEnd } from '../../server/transport/memory.ts';
import { ed25519KeyPair, ED25519_PUBLIC_KEY_BYTES, ED25519_SEED_BYTES, type Ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import type { ClientTransportSink, JobEnd, ProtocolError, ServerMessage } from '../../shared/protocol/index.ts';

/** Where each member's examples come from. */
export interface ClientDataSource {
  readonly size: number;
  /** How many examples client k holds (reported at hello; its data is not touched). */
  sizeOf(k: number): number;
  /** What the pool trains client k on: rows of a registered dataset, or data made now. */
  trainingData(k: number): Dataset | DatasetRows;
  /** Releases what the source registered with the pool. */
  close(): void;
}

/** Clients as index views of one data set, registered once with the pool (one copy for any population). */
export function partitionedData(pool: TrainingPool, id: string, data: Dataset, partition: Int32Array[]): ClientDataSource {
  pool.registerDataset(id, data);
  return {
    size: partition.length,
    sizeOf: (k) => partition[k].length,
    trainingData: (k) => ({ id, rows: partition[k] }),
    close: () => pool.unregisterDataset(id),
  };
}

/** Clients generated when asked for (a population such as `SyntheticPopulation`). */
export function generatedData(population: { size: number; sizeOf(k: number): number; client(k: number): Dataset }): ClientDataSource {
  return {
    size: population.size,
    sizeOf: (k) => population.sizeOf(k),
    trainingData: (k) => population.client(k),
    close: () => {},
  };
}

/**
 * What must outlive a member's engine, in flat arrays: its identity key (32-byte seed and public key,
 * made on first use) and how many attempts of its latest round it was asked to train in (a retried
 * round draws fresh dropouts). 71 bytes a member.
 */
export class ClientStates {
  private readonly seeds: Uint8Array;
  private readonly publicKeys: Uint8Array;
  private readonly made: Uint8Array;
  private readonly lastRound: Int32Array;
  private readonly attempts: Uint16Array;

  constructor(readonly size: number) {
    this.seeds = new Uint8Array(size * ED25519_SEED_BYTES);
    this.publicKeys = new Uint8Array(size * ED25519_PUBLIC_KEY_BYTES);
    this.made = new Uint8Array(size);
    this.lastRound = new Int32Array(size).fill(-1);
    this.attempts = new Uint16Array(size);
  }

  /** Member k's long-term identity key: made the first time (from the CSPRNG), the same ever after. */
  identity(k: number): Ed25519KeyPair {
    const seed = this.seeds.subarray(k * ED25519_SEED_BYTES, (k + 1) * ED25519_SEED_BYTES);
    const publicKey = this.publicKeys.subarray(k * ED25519_PUBLIC_KEY_BYTES, (k + 1) * ED25519_PUBLIC_KEY_BYTES);
    if (!this.made[k]) {
      // shared/crypto's own key (a CSPRNG seed, its public key derived). Not node:crypto's
      // generateKeyPairSync with a JWK export: 7× faster, but Node 20 can deadlock when a collection
      // during that export finalises a key-generation job (seen at 100,000 members).
      const key = ed25519KeyPair();
      seed.set(key.seed);
      publicKey.set(key.publicKey);
      this.made[k] = 1;
    }
    return { seed: seed.slice(), publicKey: publicKey.slice() };
  }

  /** Counts an attempt of `round` for member k; returns its number (1 for the first). */
  nextAttempt(k: number, round: number): number {
    if (this.lastRound[k] !== round) {
      this.lastRound[k] = round;
      this.attempts[k] = 0;
    }
    return ++this.attempts[k];
  }

  /** Bytes these arrays hold. */
  get bytes(): number {
    return this.seeds.byteLength + this.publicKeys.byteLength + this.made.byteLength + this.lastRound.byteLength + this.attempts.byteLength;
  }
}

export interface MemberHooks {
  /** The member's engine for a fresh connection (`joined` undefined) or resumed idle in a job. */
  wake(joined: { jobId: string } | undefined): ClientEngine;
  /** The member set its engine aside. */
  parked(): void;
}

/**
 * A member's end of its connection: forwards to its engine while awake, wakes it when something
 * arrives while parked, and parks it again once it is quiescent after a round, a welcome or the end.
 */
export class Member implements ClientTransportSink {
  private engine?: ClientEngine;
  private jobId?: string;
  /** The job_end this member was told while parked. */
  ended?: JobEnd;

  constructor(
    readonly index: number,
    readonly end: MemoryClientEnd,
    private readonly hooks: MemberHooks,
    /** Never park (every engine stays, as before population scale): the reference the parked path must equal. */
    private readonly keepAwake = false,
  ) {}

  get awake(): boolean {
    return this.engine !== undefined;
  }

  /** Joined its job (welcomed at least once). */
  get joined(): boolean {
    return this.jobId !== undefined;
  }

  /** Opens its connection; the engine it wakes says hello. */
  start(): void {
    this.end.start(this);
  }

  onConnect(): void {
    // A (re)connection needs a hello: the engine handles it from the connecting state.
    this.awaken(undefined).onConnect();
  }

  onMessage(msg: ServerMessage): void {
    if (!this.engine && msg.type === 'job_end' && this.jobId !== undefined) {
      // An idle engine only records the end (state `ended`) and emits it to no one: a parked member
      // need not wake for it (the whole population hears it at once, e.g. when a run is stopped).
      this.ended = msg;
      return;
    }
    const engine = this.engine ?? this.awaken(this.jobId === undefined ? undefined : { jobId: this.jobId });
    engine.onMessage(msg);
  }


  onDisconnect(reason: string): void {
    this.engine?.onDisconnect(reason);
  }

  onProtocolError(error: ProtocolError): void {
    this.engine?.onProtocolError(error);
  }

  /** Closes the connection for good. */
  stop(): void {
    this.end.close();
    this.park();
  }

  private park(): void {
    if (!this.engine) return;
    this.engine = undefined;
    this.hooks.parked();
  }

  private awaken(joined: { jobId: string } | undefined): ClientEngine {
    if (this.engine) return this.engine;
    const engine = this.hooks.wake(joined);
    const parkIfQuiet = () => {
      // After the engine has handled the message (events fire inside its handler).
      queueMicrotask(() => {
        if (this.engine !== engine) return;
        if (engine.joinedJob !== undefined) this.jobId = engine.joinedJob;
        if (!this.keepAwake && (engine.quiescent || engine.status === 'ended')) this.park();
      });
    };
    engine.on('welcome', parkIfQuiet);
    engine.on('roundResult', parkIfQuiet);
    // Nothing follows job_end in the engine's handler: park at once (the whole population hears it).
    engine.on('jobEnd', () => {
      if (this.engine === engine && !this.keepAwake) this.park();
    });
    engine.on('evaluated', parkIfQuiet);
    this.engine = engine;
    return engine;
  }
}

/** Builds a member's task-bearing engine; the simulation supplies the task. */
export function memberEngine(clientId: string, task: ClientTask, end: MemoryClientEnd, key: Ed25519KeyPair, joined: { jobId: string } | undefined): ClientEngine {
  return new ClientEngine({ clientId, task, transport: end, identity: { key }, ...(joined ? { joined } : {}) });
}
