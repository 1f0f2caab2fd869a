import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CohortError, ConfigError, ERRORS, httpStatus, isCohortErrorCode } from './errors.ts';
import { ErrorCode } from './protocol/index.ts';
import { SecAggErrorCode } from './secagg/errors.ts';

describe('the error registry', () => {
  it('declares every wire code, protocol and SecAgg, in its area', () => {
    for (const code of Object.values(ErrorCode)) expect(['protocol', 'internal']).toContain(ERRORS[code].area);
    for (const code of Object.values(SecAggErrorCode)) expect(ERRORS[code].area).toBe('secagg');
  });

  it('has well-formed codes, HTTP statuses and summaries', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect(spec.status).toBeLessThan(600);
      expect(spec.summary.length).toBeGreaterThan(10);
    }
  });

  it('documents in the README every code a client can receive', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const table = [...readme.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(table.length).toBeGreaterThan(5);
    for (const code of table) expect(isCohortErrorCode(code), code).toBe(true);
    for (const code of Object.values(ErrorCode)) expect(table, `README error table lacks ${code}`).toContain(code);
  });

  it('maps errors to HTTP statuses: declared for CohortErrors, 500 for anything else', () => {
    expect(httpStatus(new CohortError('UNKNOWN_JOB', 'no job x'))).toBe(404);
    expect(httpStatus(new ConfigError('bad'))).toBe(400);
    expect(httpStatus(new CohortError('PAYLOAD_TOO_LARGE', 'big'))).toBe(413);
    expect(httpStatus(new Error('boom'))).toBe(500);
    expect(isCohortErrorCode('BAD_DP_PARAMETER')).toBe(false); // merged into BAD_PRIVACY_PARAMETER
    expect(isCohortErrorCode('toString')).toBe(false);
  });
});
