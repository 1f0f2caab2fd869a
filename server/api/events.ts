/**
 * `GET /api/v1/events`: the admin API's live feed, as server-sent events (text/event-stream) over an
 * ordinary authenticated GET — the dashboard reads it with fetch and its bearer header (EventSource
 * cannot send one), so it is authenticated exactly like every other route.
 *
 * Fed by the round engines' events (server/round/events.ts: a committed round, an aborted attempt, a
 * pause, the end) and by the state changes the API itself makes (lifecycle, promotion, rollback, job
 * submitted), which it publishes here. An event is a small notice (`event: <kind>`, `data: <JSON>`), not
 * a copy of the data: a reader refetches what it shows. Jobs submitted after a stream opened are picked
 * up within a second. Open streams are capped; a reader that does not keep up is dropped (it reconnects);
 * a stream whose token is revoked ends at the next notice or heartbeat; all streams end when the server
 * closes.
 */
import { PassThrough } from 'node:stream';
import { z } from 'zod';
import { CohortError } from '../../shared/errors.ts';
import { RoundEngine } from '../round/engine.ts';
import type { RouteSpec } from './types.ts';

export type LiveEventKind = 'hello' | 'round' | 'aborted' | 'paused' | 'finished' | 'job' | 'lifecycle' | 'version';

export interface LiveEvent {
  kind: LiveEventKind;
  /** The job it concerns (absent on `hello`). */
  job?: string;
  data: Record<string, unknown>;
}

/** What the feed needs of the job directory: ids and engines (a finished job's stored view emits nothing). */
export interface LiveJobSource {
  list(): ReadonlyArray<{ id: string; engine: unknown }>;
}

const MAX_STREAMS = 64;
/** A reader this far behind is dropped rather than buffered for. */
const MAX_BUFFERED_BYTES = 1 << 20;
const HEARTBEAT_MS = 15_000;
const DISCOVER_MS = 1_000;

const eventsQuery = z.object({ job: z.string().min(1).max(200).optional() }).strict();

interface Stream {
  out: PassThrough;
  /** The token that opened it (TokenRow id). */
  tokenId: string;
  job?: string;
}

export class LiveEvents {
  private readonly streams = new Set<Stream>();
  private readonly subscribed = new WeakSet<RoundEngine>();
  private readonly known = new Set<string>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly jobs: LiveJobSource,
    /** The ids of the tokens that are not revoked (read at each notice and heartbeat). */
    private readonly activeTokens: () => ReadonlySet<string>,
  ) {}

  /** Sends an event to every open stream that follows its job. */
  publish(event: LiveEvent): void {
    if (this.streams.size === 0) return;
    this.dropRevoked();
    const text = frame(event);
    for (const s of this.streams) {
      if (s.job !== undefined && event.job !== undefined && s.job !== event.job) continue;
      if (s.out.writableLength > MAX_BUFFERED_BYTES) {
        this.drop(s);
        continue;
      }
      s.out.write(text);
    }
  }

  /** Ends every stream (before the HTTP server closes, which otherwise waits for them). */
  closeAll(): void {
    for (const s of [...this.streams]) this.drop(s);
  }

  get open(): number {
    return this.streams.size;
  }

  /** The route-table entry (app.ts). */
  route(): RouteSpec {
    return {
      method: 'GET',
      url: '/api/v1/events',
      access: 'viewer',
      summary:
        'live notices as server-sent events (hello, round, aborted, paused, finished, job, lifecycle, version), every job or ?job=ID; each is `event: <kind>` with JSON data {job, …}: refetch what you show',
      query: eventsQuery,
      produces: 'text/event-stream; charset=utf-8',
      handler: (ctx) => {
        if (this.streams.size >= MAX_STREAMS) throw new CohortError('API_STREAMS_FULL', `${MAX_STREAMS} event streams are open; close one or retry later`);
        const job = (ctx.query as z.output<typeof eventsQuery>).job;
        const stream: Stream = { out: new PassThrough(), tokenId: ctx.token!.id, ...(job !== undefined ? { job } : {}) };
        this.discover(false);
        this.streams.add(stream);
        this.tick();
        ctx.reply.raw.on('close', () => this.drop(stream));
        // The connection ends with the stream: an ended stream leaves no keep-alive socket behind.
        ctx.reply.header('cache-control', 'no-store').header('x-accel-buffering', 'no').header('connection', 'close');
        // The first bytes go out now, so the reader sees the stream open (and the headers) at once.
        stream.out.write(`retry: 2000\n${frame({ kind: 'hello', data: { jobs: this.jobs.list().map((h) => h.id), job: job ?? null } })}`);
        return stream.out;
      },
    };
  }

  private dropRevoked(): void {
    const active = this.activeTokens();
    for (const s of [...this.streams]) if (!active.has(s.tokenId)) this.drop(s);
  }

  private drop(s: Stream): void {
    if (!this.streams.delete(s)) return;
    s.out.end();
    this.tick();
  }

  /** Heartbeats and job discovery run only while a stream is open. */
  private tick(): void {
    if (this.streams.size > 0 && !this.timer) {
      let sinceBeat = 0;
      this.timer = setInterval(() => {
        this.discover(true);
        sinceBeat += DISCOVER_MS;
        if (sinceBeat >= HEARTBEAT_MS) {
          sinceBeat = 0;
          this.dropRevoked();
          for (const s of this.streams) s.out.write(': heartbeat\n\n');
        }
      }, DISCOVER_MS);
      this.timer.unref();
    } else if (this.streams.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Subscribes to every live engine not yet followed; announces jobs that appeared since the last look. */
  private discover(announce: boolean): void {
    for (const h of this.jobs.list()) {
      if (!this.known.has(h.id)) {
        this.known.add(h.id);
        if (announce) this.publish({ kind: 'job', job: h.id, data: {} });
      }
      if (h.engine instanceof RoundEngine && !this.subscribed.has(h.engine)) {
        this.subscribed.add(h.engine);
        this.follow(h.id, h.engine);
      }
    }
  }

  private follow(job: string, engine: RoundEngine): void {
    engine.on('round', (s) =>
      this.publish({
        kind: 'round',
        job,
        data: { round: s.round, epsilon: s.epsilon ?? null, trainLoss: s.record.trainLoss, trainAccuracy: s.record.trainAccuracy, evaluation: s.evaluation ?? null },
      }),
    );
    engine.on('aborted', (a) => this.publish({ kind: 'aborted', job, data: { ...a } }));
    engine.on('paused', (p) => this.publish({ kind: 'paused', job, data: { ...p } }));
    engine.on('finished', (f) => this.publish({ kind: 'finished', job, data: { status: f.status, rounds: f.rounds, reason: f.reason ?? null } }));
  }
}

/** One server-sent event: its kind as the event name, the notice as one line of JSON. */
function frame(event: LiveEvent): string {
  return `event: ${event.kind}\ndata: ${JSON.stringify({ job: event.job ?? null, ...event.data })}\n\n`;
}
