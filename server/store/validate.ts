/** Input checks at the store boundary: a bad value is a CohortError BAD_INPUT, never a half-written row. */
import { CohortError } from '../../shared/errors.ts';

function bad(field: string, message: string, value: unknown): CohortError {
  return new CohortError('BAD_INPUT', `${field}: ${message}`, { field, value: describe(value) });
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value.length > 80 ? `${value.slice(0, 80)}…` : value;
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return Object.prototype.toString.call(value);
}

export function nonEmptyString(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw bad(field, 'must be a non-empty string', value);
  return value;
}

export function finite(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(field, 'must be a finite number', value);
  return value;
}

export function finiteOrNull(field: string, value: unknown): number | null {
  return value === null ? null : finite(field, value);
}

export function count(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw bad(field, 'must be a non-negative integer', value);
  }
  return value;
}

/** Milliseconds since the epoch, as an integer (the columns are STRICT INTEGER). */
export function timestamp(field: string, value: unknown): number {
  return count(field, value);
}

export function roundNumber(field: string, value: unknown, min = 1): number {
  const n = count(field, value);
  if (n < min) throw bad(field, `must be ≥ ${min}`, value);
  return n;
}

export function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw bad(field, `must be one of ${allowed.join(', ')}`, value);
  }
  return value as T;
}

/** A flat record of finite numbers, serialised as JSON; undefined → null. */
export function metricsJson(field: string, value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(field, 'must be an object', value);
  for (const [k, v] of Object.entries(value)) finite(`${field}.${k}`, v);
  return JSON.stringify(value);
}

export function json(field: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw bad(field, `is not JSON-serialisable (${(e as Error).message})`, value);
  }
  if (text === undefined) throw bad(field, 'is not JSON-serialisable', value);
  return text;
}
