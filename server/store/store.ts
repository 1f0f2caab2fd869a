/**
 * The coordinator's durable state in one SQLite file, `<dataDir>/cohort.db`.
 *
 * Durability: WAL journal with synchronous=FULL, so every commit is fsynced before it returns; a round that
 * commitRound() returned for survives a SIGKILL or power loss. A round commit (round row, checkpoint,
 * privacy-ledger row, job's current round, pruning) is one transaction: after a crash either all of it is
 * there or none, and a model whose privacy cost is not recorded is never published.
 *
 * CohortStore is the one public facade over SQLite repositories, one file per group of tables, each owning
 * its prepared statements and row mappers: jobs.ts (jobs), rounds.ts (rounds, checkpoints, attempts and the
 * commit transaction), ledger.ts (privacy ledger), evaluations.ts, clients.ts (clients, participation),
 * and the operations plane's tokens.ts (API tokens), audit.ts (the hash-chained audit log) and tags.ts
 * (production version tags). All statements are prepared once, when the store opens. Inputs are
 * validated before any write. Tables still to come (certificates, …) get a repository file of their own
 * here, wired into this facade the same way.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors.ts';
import { AuditRepository } from './audit.ts';
import { ClientsRepository } from './clients.ts';
import { EvaluationsRepository } from './evaluations.ts';
import { JobsRepository } from './jobs.ts';
import { LedgerRepository, ledgerParams } from './ledger.ts';
import { migrate } from './migrations.ts';
import { RoundsRepository } from './rounds.ts';
import { TagsRepository } from './tags.ts';
import { TokensRepository } from './tokens.ts';
import { IdentitiesRepository } from './identities.ts';
import type {
  AbortedRoundInput,
  AttemptReleaseInput,
  AuditEntry,
  AuditFilter,
  AuditRow,
  AuditVerification,
  Checkpoint,
  ClientRow,
  JobClientRow,
  RoundParticipation,
  CommitRoundInput,
  EvaluationRecord,
  JobRow,
  JobStatus,
  LedgerEntry,
  LedgerRow,
  ParticipationEntry,
  RoundAttemptRow,
  Role,
  RoundRow,
  StoreOptions,
  TokenRow,
  VersionTag,
} from './types.ts';
import * as v from './validate.ts';

export const DB_FILE = 'cohort.db';

export class CohortStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly jobs: JobsRepository;
  private readonly rounds: RoundsRepository;
  private readonly ledger: LedgerRepository;
  private readonly now: () => number;
  private readonly evaluations: EvaluationsRepository;
  private readonly clients: ClientsRepository;
  private readonly tokens: TokensRepository;
  private readonly audit: AuditRepository;
  private readonly tags: TagsRepository;
  /** Device identities, enrolment tokens and certificates (identities.ts; schema v6), for server/identity. */
  readonly identities: IdentitiesRepository;

  private constructor(file: string, db: Database.Database, opts: StoreOptions) {
    this.path = file;
    this.db = db;
    const now = opts.now ?? Date.now;
    this.now = now;
    this.jobs = new JobsRepository(db, now);
    this.ledger = new LedgerRepository(db);
    this.rounds = new RoundsRepository(db, {
      jobs: this.jobs,
      ledger: this.ledger,
      now,
      keepCheckpoints: opts.keepCheckpoints ?? 3,
      failpoint: opts.failpoint,
    });
    this.evaluations = new EvaluationsRepository(db, this.jobs, now);
    this.clients = new ClientsRepository(db, this.jobs, now);
    this.tokens = new TokensRepository(db, now);
    this.audit = new AuditRepository(db, now);
    this.tags = new TagsRepository(db, now);
    this.identities = new IdentitiesRepository(db, now);
  }

  /** Opens (creating directories and file if missing) and migrates `<dataDir>/cohort.db`. */
  static open(dataDir: string, opts: StoreOptions = {}): CohortStore {
    v.nonEmptyString('dataDir', dataDir);
    if (opts.keepCheckpoints !== undefined) v.roundNumber('keepCheckpoints', opts.keepCheckpoints);
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, DB_FILE);
    const db = new Database(file);
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') {
        throw new CohortError('STORE_UNSUPPORTED', `${file}: cannot use WAL journal mode (got ${String(mode)})`);
      }
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${v.count('busyTimeoutMs', opts.busyTimeoutMs ?? 5000)}`);
      migrate(db);
      return new CohortStore(file, db, opts);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- jobs (jobs.ts) ----------------------------------------------------------------------------------

  createJob(input: { id: string; config: unknown; configHash: string }): JobRow {
    return this.jobs.create(input);
  }

  getJob(id: string): JobRow | undefined {
    return this.jobs.get(id);
  }

  listJobs(): JobRow[] {
    return this.jobs.list();
  }

  setJobStatus(id: string, status: JobStatus, reason?: string): void {
    this.jobs.setStatus(id, status, reason);
  }

  // ---- rounds, checkpoints, attempts (rounds.ts) ---------------------------------------------------------

  /**
   * Commits round `round` of a job: the round row, its checkpoint, its privacy-ledger row (`ledger`, DP
   * jobs), the job's current round, and pruning of old checkpoints, in one fsynced transaction. Throws
   * ROUND_ORDER unless round = currentRound + 1.
   */
  commitRound(input: CommitRoundInput): void {
    this.rounds.commit(input);
  }

  /** Records an attempt at round `round` that did not commit; current_round does not move. */
  recordRoundAborted(input: AbortedRoundInput): void {
    this.rounds.recordAborted(input);
  }

  /**
   * The ledger row of a release the attempt in flight is about to make to the coordinator (local mode:
   * asking clients to train; distributed: asking for the unmasking shares), written before it is made;
   * returns the attempt's number.
   */
  recordAttemptRelease(input: AttemptReleaseInput): number {
    return this.rounds.recordAttemptRelease(input);
  }

  listRoundAttempts(jobId: string): RoundAttemptRow[] {
    return this.rounds.listAttempts(jobId);
  }

  /** Committed rounds, ascending. */
  listRounds(jobId: string): RoundRow[] {
    return this.rounds.list(jobId);
  }

  latestCheckpoint(jobId: string): Checkpoint | undefined {
    return this.rounds.latestCheckpoint(jobId);
  }

  checkpoint(jobId: string, round: number): Checkpoint | undefined {
    return this.rounds.checkpoint(jobId, round);
  }

  /** Rounds that still have a checkpoint (after pruning), ascending. */
  checkpointRounds(jobId: string): number[] {
    return this.rounds.checkpointRounds(jobId);
  }

  // ---- privacy ledger (ledger.ts; written only by commitRound and recordAttemptRelease) -------------------

  /** The privacy ledger of a job: one row per committed DP round and per attempt's release to the coordinator, in order. */
  listLedger(jobId: string): LedgerRow[] {
    return this.ledger.list(jobId);
  }

  /** The seq of the job's newest ledger row, 0 if none: equal heads mean equal ledgers (append-only). */
  ledgerHead(jobId: string): number {
    return this.ledger.head(jobId);
  }

  // ---- evaluation (evaluations.ts) -----------------------------------------------------------------------

  /**
   * Stores (or replaces) the evaluation of `round`'s model; round 0 is the initial model. A DP job's
   * noised statistics come with their ledger row (`ledger`): both are written in one transaction, so an
   * evaluation whose privacy cost is not recorded is never stored or served.
   */
  recordEvaluation(jobId: string, round: number, ev: EvaluationRecord, ledger?: LedgerEntry): void {
    if (!ledger) return this.evaluations.record(jobId, round, ev);
    const params = ledgerParams(ledger);
    this.db
      .transaction(() => {
        this.ledger.appendEvaluation(jobId, round, params, this.now());
        this.evaluations.record(jobId, round, ev);
      })
      .immediate();
  }

  listEvaluations(jobId: string): (EvaluationRecord & { round: number })[] {
    return this.evaluations.list(jobId);
  }

  // ---- clients and participation (clients.ts) ------------------------------------------------------------

  upsertClient(clientId: string, info: { numExamples?: number; lastSeen: number }): void {
    this.clients.upsert(clientId, info);
  }

  /** Records many clients at once, in one transaction (one fsync). */
  upsertClients(entries: readonly { clientId: string; numExamples?: number; lastSeen: number }[]): void {
    this.clients.upsertMany(entries);
  }

  /**
   * Appends participation records of one round attempt, in one transaction (one fsync however large
   * the cohort); unknown clients are registered first (seen now).
   */
  recordParticipation(jobId: string, round: number, entries: readonly ParticipationEntry[]): void {
    this.clients.recordParticipation(jobId, round, entries);
  }

  listClients(): ClientRow[] {
    return this.clients.list();
  }

  /** Per round of the job, its last attempt's participation counted by status (completed, dropped, refused, rejected). */
  roundParticipation(jobId: string): RoundParticipation[] {
    return this.clients.roundParticipation(jobId);
  }

  /** The clients that took part in the job, with their rounds completed and dropouts, refusals, rejections there. */
  jobClients(jobId: string): JobClientRow[] {
    return this.clients.jobClients(jobId);
  }

  // ---- API tokens (tokens.ts) ----------------------------------------------------------------------------

  /**
   * A new API token: `token` is its text, `cht_` + 256 random bits in base64url, returned only here (the
   * store keeps its SHA-256). TOKEN_EXISTS if the name is taken.
   */
  createToken(input: { name: string; role: Role }): { token: string; row: TokenRow } {
    return this.tokens.create(input);
  }

  /** The token's row if it is known and not revoked (lastUsedAt updated, at most once a second), else undefined. */
  verifyToken(token: string): TokenRow | undefined {
    return this.tokens.verify(token);
  }

  listTokens(): TokenRow[] {
    return this.tokens.list();
  }

  /** Revokes a token by id or name (NOT_FOUND if neither matches); revoking again keeps the first revokedAt. */
  revokeToken(idOrName: string): TokenRow {
    return this.tokens.revoke(idOrName);
  }

  // ---- audit log (audit.ts) ------------------------------------------------------------------------------

  /** Appends a row to the hash-chained audit log and returns it (seq, at, prevHash, hash). */
  appendAudit(entry: AuditEntry): AuditRow {
    return this.audit.append(entry);
  }

  /** The newest `limit` (default 1000, at most 10000) rows matching the filter, oldest first. */
  listAudit(filter?: AuditFilter): AuditRow[] {
    return this.audit.list(filter);
  }

  /** Recomputes the audit chain: ok with the row count and the last hash, or the first seq that does not fit. */
  verifyAudit(): AuditVerification {
    return this.audit.verify();
  }

  // ---- version tags (tags.ts) ----------------------------------------------------------------------------

  /**
   * Moves the job's production tag to `round` (which must have its checkpoint: VERSION_PRUNED if pruned,
   * NOT_FOUND if never committed); the tagged round's checkpoint is then kept by pruning.
   */
  setProductionTag(input: { jobId: string; round: number; actor: string; forced: boolean }): VersionTag {
    return this.tags.setProduction(input);
  }

  productionTag(jobId: string): VersionTag | undefined {
    return this.tags.production(jobId);
  }

  /** Every move of the job's production tag, oldest first (the one before the last is the rollback target). */
  tagHistory(jobId: string): VersionTag[] {
    return this.tags.history(jobId);
  }
}
