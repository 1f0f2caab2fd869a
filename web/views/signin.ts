/** Sign-in with an API token (cohort admin token create …); the token is checked against GET /api/v1/session. */
import { api, ApiError, token } from '../api.ts';
import { el } from '../dom.ts';
import type { Session } from '../types.ts';
import { errorText } from './common.ts';

export function signInView(message: string | null, onSignedIn: (s: Session) => void): HTMLElement {
  const input = el('input', { attrs: { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'token-help' } });
  const error = el('p', { class: 'error', attrs: { id: 'signin-error', role: 'alert' } }, message ?? '');
  const form = el(
    'form',
    {
      class: 'signin',
      attrs: { 'aria-labelledby': 'signin-title' },
      on: {
        submit: (ev) => {
          ev.preventDefault();
          const value = input.value.trim();
          if (!value) return;
          token.set(value);
          api<Session>('/api/v1/session')
            .then(onSignedIn)
            .catch((err: unknown) => {
              token.clear();
              error.textContent = err instanceof ApiError && err.status === 401 ? 'That token is unknown or revoked. Check it and try again.' : errorText(err);
            });
        },
      },
    },
    el('h1', { attrs: { id: 'signin-title' } }, 'Sign in'),
    el('label', { attrs: { for: 'token' } }, 'API token'),
    input,
    el('p', { class: 'help', attrs: { id: 'token-help' } }, 'A token from ', el('code', null, 'cohort admin token create'), '. It is kept in this tab only (sessionStorage) and sent as a bearer header.'),
    error,
    el('button', { class: 'primary', attrs: { type: 'submit' } }, 'Sign in'),
  );
  return form;
}
