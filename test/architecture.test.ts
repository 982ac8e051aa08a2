// The house rules ARCHITECTURE.md states, checked on the sources: src/ stands in floors and no
// import runs back up; binding.ts is the only room that loads native code; the heavy parsers have
// no native code and no Node-API in them.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { root } from './helpers';

const src = path.join(root, 'src');

/** Each folder's floor: a room may import from its own folder and from lower floors only. */
const floors: Record<string, number> = {
  base: 0,
  binding: 1,
  read: 2,
  report: 2,
  cure: 3,
  profile: 3,
  diagnose: 4,
  capture: 5,
  monitor: 6,
  export: 7,
  attach: 8,
  index: 9,
  cli: 10,
};

function rooms(dir = src): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? rooms(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

/** 'read', 'cli', or for a file at the top of src/ its own name ('binding', 'index'). */
function folderOf(file: string): string {
  const rel = path.relative(src, file).split(path.sep);
  return rel.length > 1 ? rel[0] : rel[0].replace(/\.ts$/, '');
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s+|require\(|import\()'(\.{1,2}\/[^']+)'/g)].map((m) =>
    path.resolve(path.dirname(file), m[1]),
  );
}

it('every room is on a known floor', () => {
  for (const file of rooms()) expect(floors, path.relative(root, file)).toHaveProperty(folderOf(file));
});

it('no import runs back up a floor or sideways into another folder of the same floor', () => {
  const wrong: string[] = [];
  for (const file of rooms()) {
    const from = folderOf(file);
    for (const target of imports(file)) {
      const to = folderOf(target + '.ts');
      if (to !== from && !(floors[to] < floors[from])) {
        wrong.push(`${path.relative(src, file)} -> ${path.relative(src, target)}`);
      }
    }
  }
  expect(wrong).toEqual([]);
});

it('binding.ts is the only room that loads native code', () => {
  const loaders = rooms().filter((f) =>
    /require\('node-gyp-build'\)|process\.dlopen|\.node['"]/.test(readFileSync(f, 'utf8')),
  );
  expect(loaders.map((f) => path.relative(src, f))).toEqual(['binding.ts']);
});

it('the parsers (smaps, ELF symbols, jemalloc heap dumps, pprof, V8 heap snapshots) import no native code', () => {
  for (const parser of [
    'read/smaps.ts',
    'profile/profile-symbols.ts',
    'profile/profile-heap.ts',
    'profile/profile-pprof.ts',
  ]) {
    const reached = imports(path.join(src, parser)).map((t) => path.relative(src, t));
    expect(reached, parser).not.toContain('binding');
    expect(
      reached.filter((t) => t.startsWith('read/core')),
      parser,
    ).toEqual([]);
  }
});
