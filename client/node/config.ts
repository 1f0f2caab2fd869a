/** The client's config file (`cohort client --config`), validated; CLI flags override its fields. */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../shared/errors.ts';
import { PrivacyFloorSchema } from '../engine/privacy-floor.ts';
import { GroupsSchema } from '../../shared/evaluation/schema.ts';

export const ClientConfigSchema = z
  .object({
    /** Stable identity of this client; defaults to a random id per process. */
    clientId: z
      .string()
      .regex(/^[A-Za-z0-9._:@-]{1,128}$/)
      .optional(),
    server: z.string().url().optional(),
    /** A PEM CA bundle the server's TLS certificate must chain to (`--ca-file`). */
    caFile: z.string().min(1).optional(),
    /** Accept only the server certificate with this fingerprint, `sha256:<hex>` (`--server-fingerprint`). */
    serverFingerprint: z.string().min(1).optional(),
    /** Allow plaintext http:// to a host that is not loopback (`--insecure`). */
    insecure: z.boolean().optional(),
    data: z.string().min(1).optional(),
    /** Fraction of local data held out for federated evaluation. */
    testFraction: z.number().min(0).max(0.9).default(0.2),
    seed: z.number().int().min(0).default(0),
    backend: z.enum(['tensorflow', 'node', 'wasm', 'cpu']).optional(),
    labelColumn: z.union([z.string(), z.number().int().min(0)]).optional(),
    featureShape: z.array(z.number().int().positive()).optional(),
    numClasses: z.number().int().min(2).optional(),
    /** Group attributes for fairness reports, e.g. { "region": "eu", "device": "low-end" } (sent with evaluation statistics). */
    groups: GroupsSchema.optional(),
    /** The weakest privacy this client accepts; rounds announced with less are refused. */
    privacyFloor: PrivacyFloorSchema.optional(),
    reconnect: z
      .object({
        initialDelayMs: z.number().int().min(10).default(500),
        maxDelayMs: z.number().int().min(10).default(30_000),
      })
      .strict()
      .default({ initialDelayMs: 500, maxDelayMs: 30_000 }),
  })
  .strict();
export type ClientConfig = z.output<typeof ClientConfigSchema>;

export function loadClientConfig(path: string | undefined): ClientConfig {
  if (!path) return ClientConfigSchema.parse({});
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read client config ${path}: ${(err as Error).message}`);
  }
  const parsed = ClientConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`${path} is invalid:\n${problems.join('\n')}`);
  }
  return parsed.data;
}
