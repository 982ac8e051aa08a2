// The code blocks of README.md and docs/*.md marked <!-- runnable: name --> run as written, as a
// user would paste them into a project where fragstat is installed; and every relative link in
// those pages reaches a file that exists and, with #anchor, a heading of that file.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { root, runNode } from './helpers';

/** README.md and every .md under docs/, as paths relative to the repository. */
function pages(): string[] {
  const found = ['README.md'];
  const walk = (dir: string) => {
    for (const e of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.md')) found.push(rel);
    }
  };
  walk('docs');
  return found;
}

const texts = new Map(pages().map((p) => [p, readFileSync(path.join(root, p), 'utf8')]));
const readme = texts.get('README.md') ?? '';
const blocks = [...texts].flatMap(([page, text]) =>
  [...text.matchAll(/<!-- runnable: ([\w.-]+) -->\s*```\w*\n([\s\S]*?)```/g)].map((m) => ({
    page,
    file: m[1],
    code: m[2],
  })),
);
const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(path.join(dir, 'node_modules'));
symlinkSync(root, path.join(dir, 'node_modules/fragstat'));
// The other packages a block imports (prom-client, ...) come from fragstat's own devDependencies.
for (const name of new Set(
  blocks.flatMap((b) => [...b.code.matchAll(/(?:require\(|from )'([^'.:][^']*)'/g)].map((m) => m[1])),
)) {
  if (name === 'fragstat') continue;
  mkdirSync(path.dirname(path.join(dir, 'node_modules', name)), { recursive: true });
  symlinkSync(path.join(root, 'node_modules', name), path.join(dir, 'node_modules', name));
}

it('marks the first example (Usage) runnable, ahead of the pointers to the reference', () => {
  expect(blocks.map((b) => b.file)).toContain('usage.mjs');
  const usage = readme.indexOf('<!-- runnable: usage.mjs -->');
  expect(usage).toBeGreaterThan(-1);
  expect(readme.indexOf('](docs/api/')).toBeGreaterThan(usage);
});

it('names every runnable block uniquely across the pages', () => {
  const names = blocks.map((b) => b.file);
  expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  // The docs pages carry runnable blocks too, not only the README.
  expect(blocks.some((b) => b.page.startsWith('docs/'))).toBe(true);
});

for (const { page, file, code } of blocks) {
  it(`${page}: ${file} runs as written`, () => {
    writeFileSync(path.join(dir, file), code);
    const r = runNode([path.join(dir, file)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    if (file === 'usage.mjs') {
      expect(r.stdout).toMatch(/^glibc \d+ \d+ \d+ [\d.]+\n/);
      expect(r.stdout).toMatch(/released -?\d+ bytes in [\d.]+ ms/);
    }
  });
}

/** GitHub's anchor for a heading: lowercase, punctuation dropped but - and _, spaces to -. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors a page's headings make (a repeated heading gets -1, -2, ... as on GitHub). */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, heading] of withoutCode(text).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = slug(heading);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The text with fenced code blocks and inline code spans blanked out (links there are not links). */
function withoutCode(text: string): string {
  return text
    .replace(/^(```|~~~)[\s\S]*?^\1/gm, '')
    .replace(/`[^`\n]*`/g, (m) => (m.includes('](') ? '' : m));
}

describe('relative links', () => {
  it('the slug rule matches GitHub on headings of these pages', () => {
    expect(slug('`trim(): Promise<TrimResult>`')).toBe('trim-promisetrimresult');
    expect(slug("System calls, and systemd's SystemCallFilter=@system-service")).toBe(
      'system-calls-and-systemds-systemcallfiltersystem-service',
    );
    expect(slug('The fast path: `fragstat run --report`')).toBe('the-fast-path-fragstat-run---report');
  });

  // docs/api/ is typedoc's output, checked against the code by api-docs.test.ts; links into it from
  // the pages written by hand are checked here like any other.
  for (const [page, text] of [...texts].filter(([p]) => !p.startsWith('docs/api/'))) {
    it(`${page}: every relative link reaches an existing file and heading`, () => {
      const broken: string[] = [];
      for (const [, target] of withoutCode(text).matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: ...
        const [file, anchor] = target.split('#', 2);
        const resolved =
          file === '' ? page : path.posix.normalize(path.posix.join(path.posix.dirname(page), file));
        const full = path.join(root, resolved);
        if (!existsSync(full)) {
          broken.push(`${target} (no ${resolved})`);
          continue;
        }
        if (anchor === undefined) continue;
        const headings =
          statSync(full).isFile() && resolved.endsWith('.md')
            ? anchors(texts.get(resolved) ?? readFileSync(full, 'utf8'))
            : new Set<string>();
        if (!headings.has(anchor)) broken.push(`${target} (no heading #${anchor} in ${resolved})`);
      }
      expect(broken).toEqual([]);
    });
  }

  it("makes GitHub's anchors from headings, repeated ones numbered, none from code", () => {
    expect(anchors('# A\n## `b(): C`\n## A\n```\n## not a heading\n```\n')).toEqual(
      new Set(['a', 'b-c', 'a-1']),
    );
  });
});
