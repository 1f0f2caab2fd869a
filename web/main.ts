/**
 * The dashboard shell: sign-in, the header (who is signed in, with what role; sign-out), hash routes
 * (#/ jobs, #/jobs/<id>, #/audit) and one live feed (GET /api/v1/events) whose notices go to the view
 * on screen. Plain DOM modules; every datum is set as text (dom.ts).
 */
import { api, ApiError, follow, prefetch, token } from './api.ts';
import { announce, byId, el, replace } from './dom.ts';
import type { LiveNotice, Session } from './types.ts';
import { auditView } from './views/audit.ts';
import { errorText, type View, type ViewContext } from './views/common.ts';
import { jobPaths, jobView } from './views/job.ts';
import { overviewView } from './views/overview.ts';
import { signInView } from './views/signin.ts';

let session: Session | null = null;
let view: View | null = null;
let live: AbortController | null = null;

function show(next: View | HTMLElement): void {
  view?.destroy?.();
  view = next instanceof HTMLElement ? { node: next } : next;
  replace(byId('main'), view.node);
}

function signOut(message: string | null): void {
  token.clear();
  session = null;
  live?.abort();
  live = null;
  replace(byId('nav'));
  replace(byId('session'));
  document.title = 'Sign in · Cohort';
  show(signInView(message, signedIn));
  byId<HTMLInputElement>('token').focus();
}

function fail(err: unknown): void {
  if (err instanceof ApiError && err.status === 401) {
    signOut('Your token is unknown or has been revoked. Sign in again.');
    return;
  }
  announce(errorText(err));
  const main = byId('main');
  const old = main.querySelector('.error-banner');
  old?.remove();
  main.prepend(el('p', { class: 'error error-banner', attrs: { role: 'alert' } }, errorText(err)));
}

function signedIn(s: Session): void {
  session = s;
  replace(
    byId('nav'),
    el('a', { attrs: { href: '#/' } }, 'Jobs'),
    el('a', { attrs: { href: '#/audit' } }, 'Audit log'),
  );
  replace(
    byId('session'),
    el('span', { attrs: { 'data-testid': 'whoami' } }, s.name, ' ', el('span', { class: 'badge badge-role', attrs: { 'data-role': s.role } }, s.role)),
    el('button', { attrs: { type: 'button', 'data-action': 'sign-out' }, on: { click: () => signOut('Signed out.') } }, 'Sign out'),
  );
  live?.abort();
  live = new AbortController();
  follow(
    (n: LiveNotice) => {
      if (n.kind === 'hello') return; // the stream is open; the view has just loaded what it shows
      if (n.kind === 'round' && typeof n.round === 'number') announce(`Job ${String(n.job)}: round ${n.round} committed.`);
      view?.onNotice?.(n);
    },
    live.signal,
    () => view?.onNotice?.(null),
    () => signOut('Your token is unknown or has been revoked. Sign in again.'),
  );
  route();
}

function route(): void {
  if (!session) return;
  const ctx: ViewContext = { session, canOperate: session.role !== 'viewer', fail };
  const hash = location.hash.replace(/^#/, '') || '/';
  const job = /^\/jobs\/([^/]+)$/.exec(hash);
  if (job) {
    const id = decodeURIComponent(job[1]);
    document.title = `${id} · Cohort`;
    show(jobView(ctx, id));
  } else if (hash === '/audit') {
    document.title = 'Audit log · Cohort';
    show(auditView(ctx));
  } else {
    document.title = 'Jobs · Cohort';
    show(overviewView(ctx));
  }
  for (const a of byId('nav').querySelectorAll('a')) {
    if (a.getAttribute('href') === `#${hash}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function start(): void {
  window.addEventListener('hashchange', route);
  if (!token.get()) return signOut(null);
  const job = /^#\/jobs\/([^/]+)$/.exec(location.hash);
  if (job) prefetch(jobPaths(decodeURIComponent(job[1])));
  api<Session>('/api/v1/session')
    .then(signedIn)
    .catch((err: unknown) => signOut(err instanceof ApiError && err.status === 401 ? 'Your token is unknown or has been revoked. Sign in again.' : errorText(err)));
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
