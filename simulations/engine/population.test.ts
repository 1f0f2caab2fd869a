/**
 * A population's compact state: identity keys made once and kept (valid Ed25519 pairs, equal to the
 * shared derivation), attempts counted per member and round.
 */
import { describe, expect, it } from 'vitest';
import { ed25519KeyPair, ed25519Sign, ed25519Verify } from '../../shared/crypto/ed25519.ts';
import { ClientStates } from './population.ts';

describe('ClientStates', () => {
  it('makes each member one key pair, the same every time it is asked, and a valid one', () => {
    const states = new ClientStates(1000);
    const a = states.identity(999);
    expect(states.identity(999)).toEqual(a);
    expect(states.identity(0).seed).not.toEqual(a.seed);
    // The public key is the one shared/crypto derives from the seed; signatures verify under it.
    expect(ed25519KeyPair(a.seed).publicKey).toEqual(a.publicKey);
    const message = new TextEncoder().encode('hello');
    expect(ed25519Verify(a.publicKey, message, ed25519Sign(a, message))).toBe(true);
    expect(states.bytes).toBe(1000 * (32 + 32 + 1 + 4 + 2));
  });

  it('counts attempts per member and round, starting again at a new round', () => {
    const states = new ClientStates(3);
    expect([states.nextAttempt(1, 5), states.nextAttempt(1, 5), states.nextAttempt(2, 5), states.nextAttempt(1, 6)]).toEqual([1, 2, 1, 1]);
  });
});
