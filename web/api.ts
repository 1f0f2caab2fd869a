/**
 * The admin API as the dashboard calls it: the token lives in sessionStorage (gone with the tab) and
 * goes out as a bearer header — no cookie, so there is nothing for another site to ride (no CSRF
 * surface). Errors come back as the API's typed `{error: {code, message}}`.
 */
import type { LiveNotice } from './types.ts';

const TOKEN_KEY = 'cohort.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const token = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (value: string): void => sessionStorage.setItem(TOKEN_KEY, value),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
};

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = token.get();
  return { ...(t ? { authorization: `Bearer ${t}` } : {}), ...extra };
}

async function failure(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    return new ApiError(res.status, body.error?.code ?? 'HTTP', body.error?.message ?? res.statusText);
  } catch {
    return new ApiError(res.status, 'HTTP', `${res.status} ${res.statusText}`);
  }
}

/** GETs started before they were asked for (prefetch), each handed out once. */
const early = new Map<string, Promise<unknown>>();

/**
 * Starts GETs the first view will make while the sign-in check is still in flight, so a page load costs
 * one round trip less. A 401 among them is handled like any other: by whoever asks for it.
 */
export function prefetch(paths: readonly string[]): void {
  for (const path of paths) {
    const answer = api(path);
    answer.catch(() => {}); // handled by the view that takes it; not an unhandled rejection meanwhile
    early.set(path, answer);
  }
}

/** GET (or POST with a JSON body) a route; its JSON answer or an ApiError. */
export async function api<T>(path: string, init: { method?: 'GET' | 'POST'; body?: unknown } = {}): Promise<T> {
  const started = (init.method ?? 'GET') === 'GET' ? early.get(path) : undefined;
  if (started) {
    early.delete(path);
    return started as Promise<T>;
  }
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers: headers(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    cache: 'no-store',
  });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/** GET a route that answers text (a model card as Markdown). */
export async function apiText(path: string): Promise<string> {
  const res = await fetch(path, { headers: headers(), cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  return res.text();
}

/** Saves what a route answers (it needs the bearer header, so a plain link cannot fetch it). */
export async function download(path: string, filename: string): Promise<void> {
  const res = await fetch(path, { headers: headers(), cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  saveBlob(await res.blob(), filename);
}

export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Follows GET /api/v1/events (server-sent events read with fetch, so the bearer header goes with it),
 * reconnecting after a second or two when the stream ends, until `signal` aborts. `onReconnect` runs on
 * every connection after the first: a reader refetches then, since notices sent while it was away are
 * not replayed. A 401 (the token was revoked: the server ends its streams) stops it and calls
 * `onUnauthorized`.
 */
export function follow(onNotice: (n: LiveNotice) => void, signal: AbortSignal, onReconnect: () => void, onUnauthorized: () => void): void {
  let connections = 0;
  const run = async (): Promise<void> => {
    while (!signal.aborted) {
      try {
        const res = await fetch('/api/v1/events', { headers: headers({ accept: 'text/event-stream' }), signal, cache: 'no-store' });
        if (res.status === 401) return onUnauthorized();
        if (!res.ok || !res.body) throw await failure(res);
        if (connections++ > 0) onReconnect();
        await readEvents(res.body, onNotice);
      } catch {
        if (signal.aborted) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
  };
  void run();
}

/** Parses a text/event-stream body: `event:` and `data:` lines, a blank line ends an event. */
async function readEvents(body: ReadableStream<Uint8Array>, onNotice: (n: LiveNotice) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let kind = 'message';
  let data = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      if (line === '') {
        if (data) {
          try {
            onNotice({ ...(JSON.parse(data) as Record<string, unknown>), kind } as LiveNotice);
          } catch {
            // not one of ours; ignore
          }
        }
        kind = 'message';
        data = '';
      } else if (line.startsWith('event:')) kind = line.slice(6).trim();
      else if (line.startsWith('data:')) data += line.slice(5).trim();
    }
  }
}
