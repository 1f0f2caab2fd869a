/** Device identity (DESIGN.md §4): certificates and revocation lists signed by the federation CA, and the signed hello transcript. Pure. */
export * from './certificate.ts';
export * from './transcript.ts';
export * from './revocation.ts';
