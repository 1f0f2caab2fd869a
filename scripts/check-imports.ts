/**
 * `npm run check:imports` (part of `npm test`): the import rules of the layout (README "Architecture",
 * DESIGN.md §1), checked over the TypeScript import graph of the repository (static imports, re-exports
 * and literal dynamic imports, type-only ones included; found with the TypeScript compiler's own
 * `preProcessFile`, so no extra dependency):
 *
 * 1. no import cycle among our files;
 * 2. `shared/` imports nothing from server/, client/, simulations/, bench/, cli/, test/, scripts/ and no
 *    Node built-in (tests, `*.test.ts`, run in Node and are exempt); shared/crypto and shared/dp do not
 *    import shared/secagg (the primitives sit below their users);
 * 3. the isomorphic client (client/ outside client/node/) imports no Node built-in and nothing from
 *    server/ or simulations/;
 * 4. server/ never imports client/, and client/ never imports server/ (tests that drive both sides,
 *    e.g. server/round/*.test.ts with real client engines, are exempt);
 * 5. the dashboard (web/, bundled for the browser) imports only web/, shared/ and packages, never a Node
 *    built-in.
 *
 * Prints each violation and exits 1 if there is any. Known exceptions are listed below with a TODO;
 * one that no longer occurs is reported too, so the list cannot go stale.
 */
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_DIRS = ['shared', 'server', 'client', 'simulations', 'bench', 'cli', 'test', 'scripts', 'web'];

/** Violations we know of and accept for now (file → specifier), each with the reason it goes away. */
const KNOWN_EXCEPTIONS: { file: string; specifier: string; todo: string }[] = [];
/** Import cycles we know of (each as its sorted member list). Type-only imports count: a cycle of types is still a knot. */
const KNOWN_CYCLES: { members: string[]; todo: string }[] = [];

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const isNodeBuiltin = (spec: string): boolean => spec.startsWith('node:') || NODE_BUILTINS.has(spec.split('/')[0]);

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) walk(rel);
      } else if (/\.(ts|mts|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(rel);
    }
  };
  for (const dir of SOURCE_DIRS) if (fs.existsSync(path.join(ROOT, dir))) walk(dir);
  return out.sort();
}

interface Edge {
  specifier: string;
  /** Repository-relative target for our own files; undefined for packages and built-ins. */
  target?: string;
}

function importsOf(file: string): Edge[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles.map(({ fileName: specifier }) => {
    if (!specifier.startsWith('.')) return { specifier };
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
    return { specifier, target };
  });
}

/** Strongly connected components with more than one member (or a self-import): Tarjan's algorithm. */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

export interface ImportReport {
  violations: string[];
  files: number;
}

export function checkImports(): ImportReport {
  const files = sourceFiles();
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  const violations: string[] = [];
  const usedExceptions = new Set<number>();
  const top = (file: string): string => file.split('/')[0];

  for (const file of files) {
    const edges = importsOf(file);
    graph.set(file, edges.flatMap((e) => (e.target && known.has(e.target) ? [e.target] : [])));
    const isTest = /\.test\.ts$/.test(file);
    const isomorphicClient = top(file) === 'client' && !file.startsWith('client/node/');
    for (const { specifier, target } of edges) {
      if (target && !known.has(target) && !fs.existsSync(path.join(ROOT, target))) {
        violations.push(`${file}: imports '${specifier}', which does not exist`);
        continue;
      }
      const problem = ((): string | undefined => {
        const targetTop = target ? top(target) : undefined;
        if (top(file) === 'shared' && !isTest) {
          if (isNodeBuiltin(specifier)) return 'shared/ must not import a Node built-in';
          if (targetTop && targetTop !== 'shared') return `shared/ must not import from ${targetTop}/`;
          // Primitives below their users: crypto and dp are libraries that secagg uses, not the reverse.
          if (/^shared\/(crypto|dp)\//.test(file) && target?.startsWith('shared/secagg/')) return 'shared/crypto and shared/dp must not import shared/secagg';
        }
        if (isomorphicClient && !isTest) {
          if (isNodeBuiltin(specifier)) return 'the isomorphic client (outside client/node/) must not import a Node built-in';
          if (targetTop === 'simulations') return 'client/ must not import from simulations/';
        }
        if (top(file) === 'web') {
          if (isNodeBuiltin(specifier)) return 'web/ (the dashboard, a browser bundle) must not import a Node built-in';
          if (targetTop && targetTop !== 'web' && targetTop !== 'shared') return `web/ must not import from ${targetTop}/`;
        }
        if (!isTest && top(file) === 'client' && targetTop === 'server') return 'client/ must not import from server/';
        if (!isTest && top(file) === 'server' && targetTop === 'client') return 'server/ must not import from client/';
        return undefined;
      })();
      if (!problem) continue;
      const k = KNOWN_EXCEPTIONS.findIndex((e) => e.file === file && e.specifier === specifier);
      if (k >= 0) usedExceptions.add(k);
      else violations.push(`${file}: imports '${specifier}': ${problem}`);
    }
  }
  KNOWN_EXCEPTIONS.forEach((e, k) => {
    if (!usedExceptions.has(k)) violations.push(`known exception no longer occurs, remove it from scripts/check-imports.ts: ${e.file} → ${e.specifier}`);
  });

  const found = cycles(graph);
  const usedCycles = new Set<number>();
  for (const scc of found) {
    const k = KNOWN_CYCLES.findIndex((c) => c.members.join('\n') === scc.join('\n'));
    if (k >= 0) usedCycles.add(k);
    else violations.push(`import cycle: ${scc.join(' ⇄ ')}`);
  }
  KNOWN_CYCLES.forEach((c, k) => {
    if (!usedCycles.has(k)) violations.push(`known cycle no longer occurs, remove it from scripts/check-imports.ts: ${c.members.join(' ⇄ ')}`);
  });
  return { violations, files: files.length };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { violations, files } = checkImports();
  for (const v of violations) console.error(v);
  const exceptions = KNOWN_EXCEPTIONS.length + KNOWN_CYCLES.length;
  console.error(
    violations.length === 0
      ? `check-imports: ${files} files, no cycle, layer rules hold${exceptions ? ` (${exceptions} known exception${exceptions > 1 ? 's' : ''})` : ''}`
      : `check-imports: ${violations.length} problem${violations.length > 1 ? 's' : ''}`,
  );
  process.exitCode = violations.length === 0 ? 0 : 1;
}
