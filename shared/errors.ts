/** Base class of every error Cohort raises on purpose: a stable `code` callers can branch on. */
export class CohortError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A configuration (job file, client config, CLI flags) that does not validate. */
export class ConfigError extends CohortError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('BAD_CONFIG', message, details);
  }
}
