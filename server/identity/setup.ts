/**
 * A coordinator process's federation, from its flags: which mode (`first-use` on loopback by default,
 * `certificate` otherwise) and where the CA lives (the data dir, or offline: its public key only).
 */
import { CohortError } from '../../shared/errors.ts';
import { isLoopbackHost } from '../../shared/transport-security.ts';
import type { Logger } from '../../shared/log.ts';
import type { CohortStore } from '../store/index.ts';
import { authorityFromPublicKey, dataDirAuthority, readCaPublicKey } from './authority.ts';
import { Federation, type ClientAuthMode } from './federation.ts';

export interface FederationSetup {
  store: CohortStore;
  dataDir: string;
  /** The address the coordinator listens on: loopback admits clients on first use by default. */
  host: string;
  /** Overrides the default mode. */
  clientAuth?: ClientAuthMode;
  /** The offline CA's public key file (`cohort ca init` wrote it): no CA private key on this machine. */
  caPublicKeyFile?: string;
  /** With an offline CA: the file its signed revocation list is kept in (`cohort ca revoke`), re-read when it changes. */
  revocationListFile?: string;
  logger?: Logger;
  now?: () => number;
}

export function federationFor(s: FederationSetup): Federation {
  const mode: ClientAuthMode = s.clientAuth ?? (isLoopbackHost(s.host) ? 'first-use' : 'certificate');
  if (s.clientAuth !== undefined && s.clientAuth !== 'first-use' && s.clientAuth !== 'certificate') {
    throw new CohortError('BAD_CONFIG', `--client-auth must be first-use or certificate, got ${String(s.clientAuth)}`);
  }
  const authority = s.caPublicKeyFile ? authorityFromPublicKey(readCaPublicKey(s.caPublicKeyFile)) : dataDirAuthority(s.dataDir);
  s.logger?.info({ clientAuth: mode, ca: authority.fingerprint, caKey: authority.where }, mode === 'first-use' ? 'clients: an unknown id is bound to the first key it presents (loopback default)' : 'clients: a certificate from the federation CA (or an enrolment token) is required');
  if (s.revocationListFile && authority.signRevocations) {
    throw new CohortError('BAD_CONFIG', '--revocation-list is for an offline CA (--ca-public-key): with the CA key in the data dir the coordinator signs its own list');
  }
  return new Federation({
    store: s.store,
    mode,
    authority,
    ...(s.revocationListFile ? { revocationListFile: s.revocationListFile } : {}),
    ...(s.logger ? { logger: s.logger } : {}),
    ...(s.now ? { now: s.now } : {}),
  });
}
