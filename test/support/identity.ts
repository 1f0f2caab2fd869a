/**
 * Identity keys for test clients: derived from the client id (SHA-256 of a test-only label and the id),
 * so a client keeps its key across restarts of a coordinator, of a test, or of a client process — as a
 * device keeps its identity file. A test that reconnects "the same" clients must present the same keys,
 * or the coordinator rightly refuses them (the ids are bound). Never for real devices: anyone who knows
 * the id knows the key.
 */
import { utf8 } from '../../shared/crypto/bytes.ts';
import { ed25519KeyPair, type Ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import { sha256 } from '../../shared/crypto/sha256.ts';

const keys = new Map<string, Ed25519KeyPair>();

export function testIdentity(clientId: string): { key: Ed25519KeyPair } {
  let key = keys.get(clientId);
  if (!key) keys.set(clientId, (key = ed25519KeyPair(sha256(utf8(`cohort-test-identity/${clientId}`)))));
  return { key };
}
