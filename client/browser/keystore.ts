/**
 * The device's long-term Ed25519 identity in the browser: a 32-byte RFC 8032 seed kept in IndexedDB
 * (database `cohort`, object store `identity`, one record per key name), created on first use from
 * the platform CSPRNG. The public key is derived from the seed (shared/crypto/ed25519.ts: tweetnacl
 * where node:crypto is absent, which is every browser), so signatures work whether or not the
 * browser's WebCrypto implements Ed25519.
 *
 * The seed is stored as bytes, readable by scripts of this origin: the same trust as the key file of
 * the Node client (client/node), no more. A certificate the federation CA issued for the key can be
 * stored alongside it.
 */
import { ED25519_SEED_BYTES, ed25519KeyPair, type Ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import { randomBytes } from '../../shared/random.ts';
import { CohortError } from '../../shared/errors.ts';

const DB_NAME = 'cohort';
const STORE = 'identity';
const DB_VERSION = 1;

export interface StoredIdentity extends Ed25519KeyPair {
  name: string;
  createdAt: number;
  /** The CA's certificate for this key, once enrolled (its format is the identity plane's). */
  certificate?: string;
  /** The federation CA's public key (base64url), pinned at enrolment: SecAgg neighbours must show its certificates. */
  caPublicKey?: string;
}

interface IdentityRecord {
  name: string;
  seed: Uint8Array;
  createdAt: number;
  certificate?: string;
  caPublicKey?: string;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function unavailable(err: unknown): CohortError {
  return new CohortError('UNSUPPORTED_PLATFORM', `cannot keep the device identity in IndexedDB: ${err instanceof Error ? err.message : String(err)}`);
}

/** A keystore over one IndexedDB database; `open` it once per page or worker. */
export class IdentityKeystore {
  private constructor(private readonly db: IDBDatabase) {}

  static async open(factory: IDBFactory | undefined = globalThis.indexedDB, dbName = DB_NAME): Promise<IdentityKeystore> {
    if (!factory) throw unavailable(new Error('this context has no indexedDB'));
    const req = factory.open(dbName, DB_VERSION);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE, { keyPath: 'name' });
    };
    try {
      return new IdentityKeystore(await request(req));
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** The key stored under `name`, or undefined. */
  async get(name: string): Promise<StoredIdentity | undefined> {
    const tx = this.db.transaction(STORE, 'readonly');
    const record = (await request(tx.objectStore(STORE).get(name))) as IdentityRecord | undefined;
    return record ? identityOf(record) : undefined;
  }

  /**
   * The key stored under `name`, created (and stored) if there is none. Two callers racing on a new
   * name both end up with the one record that was written first (`add` refuses the second).
   */
  async getOrCreate(name: string): Promise<StoredIdentity> {
    const existing = await this.get(name);
    if (existing) return existing;
    const record: IdentityRecord = { name, seed: randomBytes(ED25519_SEED_BYTES), createdAt: Date.now() };
    const tx = this.db.transaction(STORE, 'readwrite');
    try {
      await request(tx.objectStore(STORE).add(record));
    } catch {
      const winner = await this.get(name);
      if (winner) return winner;
      throw unavailable(new Error(`could not store key ${JSON.stringify(name)}`));
    }
    return identityOf(record);
  }

  /** Stores the CA's certificate for an existing key (and pins the CA's key when given: enrolment). */
  async setCertificate(name: string, certificate: string, caPublicKey?: string): Promise<void> {
    const tx = this.db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    const record = (await request(store.get(name))) as IdentityRecord | undefined;
    if (!record) throw new CohortError('NOT_FOUND', `no identity key named ${JSON.stringify(name)}`);
    await request(store.put({ ...record, certificate, ...(caPublicKey ? { caPublicKey } : {}) }));
  }

  /** Forgets the key (the device will enrol as a new identity). */
  async delete(name: string): Promise<void> {
    const tx = this.db.transaction(STORE, 'readwrite');
    await request(tx.objectStore(STORE).delete(name));
  }

  close(): void {
    this.db.close();
  }
}

function identityOf(record: IdentityRecord): StoredIdentity {
  if (!(record.seed instanceof Uint8Array) || record.seed.length !== ED25519_SEED_BYTES) {
    throw new CohortError('CORRUPT', `identity key ${JSON.stringify(record.name)} in IndexedDB is not a ${ED25519_SEED_BYTES}-byte seed`);
  }
  const pair = ed25519KeyPair(record.seed);
  return {
    name: record.name,
    createdAt: record.createdAt,
    seed: pair.seed,
    publicKey: pair.publicKey,
    ...(record.certificate ? { certificate: record.certificate } : {}),
    ...(record.caPublicKey ? { caPublicKey: record.caPublicKey } : {}),
  };
}
