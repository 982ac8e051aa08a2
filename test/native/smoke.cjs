// Every call of the binding and of the public API once or a few times, for a sanitizer build of
// the addon (scripts/sanitize.mjs): exits non-zero if anything throws where it should not; the
// sanitizers abort the process on any report.
//
//   node test/native/smoke.cjs <package directory>
'use strict';
const assert = require('node:assert');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const pkg = path.resolve(process.argv[2] || path.join(__dirname, '../..'));
const fragstat = require(pkg);

(async () => {
  const info = fragstat.allocator();
  assert.strictEqual(info.native, true, 'the addon loaded');
  for (let i = 0; i < 100; i++) fragstat.snapshot();
  fragstat.snapshot({ detail: true });
  await Promise.all(Array.from({ length: 16 }, (_, i) => fragstat.snapshotAsync({ detail: i % 2 === 0 })));
  fragstat.trimSync();
  await fragstat.trim();
  await fragstat.health({ detail: true });
  fragstat.doctor();
  const m = fragstat.monitor({ intervalMs: 10 });
  await new Promise((resolve) => {
    let n = 0;
    m.on('sample', () => {
      if (++n === 5) resolve();
    });
  });
  m.stop();
  // The internal binding's misuse paths: detached and wrong arrays.
  const r = spawnSync(process.execPath, [path.join(pkg, 'test/fixtures/detach.cjs')], {
    env: process.env,
    encoding: 'utf8',
  });
  assert.strictEqual(r.status, 0, `detach fixture: ${r.stderr}`);
  process.stdout.write(`smoke: ${info.name}, every call returned\n`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
