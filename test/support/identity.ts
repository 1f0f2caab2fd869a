/**
 * Identity keys for test clients: one per client id for the life of the test process, as a device keeps
 * its identity file across restarts. A test that restarts a coordinator and reconnects "the same"
 * clients must present the same keys, or the coordinator rightly refuses them (the ids are bound).
 */
import { ed25519KeyPair, type Ed25519KeyPair } from '../../shared/crypto/ed25519.ts';

const keys = new Map<string, Ed25519KeyPair>();

export function testIdentity(clientId: string): { key: Ed25519KeyPair } {
  let key = keys.get(clientId);
  if (!key) keys.set(clientId, (key = ed25519KeyPair()));
  return { key };
}
