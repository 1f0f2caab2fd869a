/**
 * DP events in words, for the ledger: the mechanism's name, and a description of what was released and
 * how it is analysed. A view of the event data — the ledger's `mechanism` column and the "accounted as"
 * part of its trust text come from here, so they cannot disagree with the event that was accounted.
 */
import type { DpEvent } from './events.ts';

const fmt = (x: number): string => (Number.isInteger(x) ? String(x) : x.toPrecision(4));

/** The noise an event is made of: 'gaussian', 'distributed_discrete_gaussian', or a '+'-joined mix. */
export function mechanismOf(event: DpEvent): string {
  switch (event.kind) {
    case 'gaussian':
      return 'gaussian';
    case 'distributedDiscreteGaussian':
      return 'distributed_discrete_gaussian';
    case 'poissonSampled':
    case 'sampledWithoutReplacement':
    case 'selfComposed':
      return mechanismOf(event.event);
    case 'composed':
      return [...new Set(event.events.map(mechanismOf))].join('+');
  }
}

/** One line: what the event releases and which analysis applies (with the papers the accountant follows). */
export function describeEvent(event: DpEvent): string {
  switch (event.kind) {
    case 'gaussian':
      return `Gaussian, noise multiplier ${fmt(event.noiseMultiplier)} of the sensitivity`;
    case 'distributedDiscreteGaussian':
      return (
        `sum of ${event.clients} discrete Gaussians (σ ${fmt(event.localStddev)} each, L2 sensitivity ${fmt(event.l2Sensitivity)} ` +
        `in integer units, d ${event.dimension}; KLS21 RDP with τ)`
      );
    case 'poissonSampled':
      return `Poisson-sampled at q ${fmt(event.samplingProbability)} (${event.event.kind === 'distributedDiscreteGaussian' ? 'Zhu–Wang 2019 general bound' : 'MTZ 2019'}): ${describeEvent(event.event)}`;
    case 'sampledWithoutReplacement':
      return `${event.sampleSize} of ${event.sourceSize} sampled without replacement (WBK 2019): ${describeEvent(event.event)}`;
    case 'selfComposed':
      return `${event.count} × (${describeEvent(event.event)})`;
    case 'composed':
      return event.events.map(describeEvent).join(' + ');
  }
}
