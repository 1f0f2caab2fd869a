/**
 * Reference RDP values at fractional orders: [q, z, α, log(A_α)/(α − 1)] with
 * A_α = ∫ N(x; 0, z²)(1 − q + q e^{(2x−1)/(2z²)})^α dx, computed by mpmath.quad at 60 digits. Used by the
 * series tests (rdp.test.ts) and by the quadrature's self-test (quadrature.test.ts).
 */
export const FRACTIONAL: ReadonlyArray<readonly [number, number, number, number]> = [
  [0.01, 1.1, 1.5, 0.000095545285718748317959],
  [0.1, 1, 1.1, 0.0080985684680738377999],
  [0.4, 12, 58.5, 0.036031114312815308669],
  [1e-3, 0.7, 3.7, 0.000012879310760646126661],
  [0.05, 2, 10.9, 0.0044835821985611210256],
  [0.04, 1.5, 3.9, 0.0018332021995838585679],
  [1e-5, 0.1, 1.25, 5.9575608855150553387],
  [0.3, 0.5, 2.5, 3.0070916955360951253],
];
