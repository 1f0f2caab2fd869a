#!/usr/bin/env node
// The `cohort` command: runs the TypeScript CLI through tsx's loader (a runtime dependency).
import { register } from 'tsx/esm/api';

register();
await import('../cli/cohort.ts');
