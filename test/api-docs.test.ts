// docs/api/ is generated from the TSDoc comments by typedoc (npm run docs:api) and committed; this
// regenerates it and fails when the committed copy has drifted from the code, or when a type the
// API uses is not exported (typedoc's warnings are errors here).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { root, runNode } from './helpers';

const out = mkdtempSync(path.join(os.tmpdir(), 'fragstat-api-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const files = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();

it('docs/api/ is what typedoc makes of the code now (npm run docs:api rewrites it)', () => {
  const typedoc = path.join(root, 'node_modules/typedoc/bin/typedoc');
  const r = runNode([typedoc, '--out', out, '--logLevel', 'Warn']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const committed = path.join(root, 'docs/api');
  expect(files(committed)).toEqual(files(out));
  for (const f of files(out)) {
    expect(readFileSync(path.join(committed, f), 'utf8'), `docs/api/${f}`).toBe(
      readFileSync(path.join(out, f), 'utf8'),
    );
  }
}, 120_000);
