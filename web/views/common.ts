/** What every view gets from the shell, and the small pieces views share. */
import { ApiError } from '../api.ts';
import { el } from '../dom.ts';
import type { LiveNotice, Session } from '../types.ts';

export interface ViewContext {
  session: Session;
  /** Operators and admins may steer jobs and versions. */
  canOperate: boolean;
  /** Shows an error: a 401 sends the user back to the sign-in. */
  fail(err: unknown): void;
}

export interface View {
  node: HTMLElement;
  /** A live notice (GET /api/v1/events) arrived, or the stream (re)connected (null). */
  onNotice?(n: LiveNotice | null): void;
  destroy?(): void;
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/** Runs `load` now and again on demand; overlapping demands coalesce into one more run. */
export function refresher(load: () => Promise<void>): () => void {
  let running = false;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await load();
      } while (again);
    } finally {
      running = false;
    }
  };
  return () => void run();
}

/** A modal confirmation (native <dialog>): resolves true if confirmed; with `force`, a checkbox too. */
export function confirmAction(title: string, text: string, confirmLabel: string, opts: { force?: string } = {}): Promise<{ ok: boolean; force: boolean }> {
  return new Promise((resolve) => {
    const force = opts.force ? el('input', { attrs: { type: 'checkbox', id: 'confirm-force' } }) : null;
    const titleId = `dialog-title-${Date.now()}`;
    const dialog = el(
      'dialog',
      { class: 'confirm', attrs: { 'aria-labelledby': titleId } },
      el('h2', { attrs: { id: titleId } }, title),
      el('p', null, text),
      force ? el('p', null, force, ' ', el('label', { attrs: { for: 'confirm-force' } }, opts.force!)) : null,
      el(
        'div',
        { class: 'actions' },
        el('button', { attrs: { type: 'button', 'data-action': 'cancel' }, on: { click: () => dialog.close('cancel') } }, 'Cancel'),
        el('button', { class: 'primary', attrs: { type: 'button', 'data-action': 'confirm' }, on: { click: () => dialog.close('confirm') } }, confirmLabel),
      ),
    );
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve({ ok: dialog.returnValue === 'confirm', force: force?.checked ?? false });
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}

export function statusBadge(status: string): HTMLElement {
  return el('span', { class: `badge badge-${/^[a-z_]+$/.test(status) ? status : 'other'}` }, status);
}
