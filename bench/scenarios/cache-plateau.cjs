// cache-plateau: a fastify report service with a bounded cache. Rows live in an in-memory SQLite
// database (better-sqlite3, 20,000 rows); GET /report/<key> answers a page of 40-130 rows as
// gzipped JSON (zlib.gzipSync, 5-20 KB) and keeps the answer in an LRU of at most 5,000 entries
// (a Map: a hit moves the key to the end, an insert past 5,000 evicts the oldest). Keys are drawn
// from a million at a fixed request rate, so nearly every request misses: the cache fills in
// about two minutes and then turns over at the same size for four more.
// Expected verdict: stable (RSS rises while the cache fills, then stays flat: a bounded cache is
// not a leak).
'use strict';

exports.scenario = {
  expected: 'stable',
  notes:
    'fastify + better-sqlite3 (in-memory, 20,000 rows) + a 5,000-entry LRU of gzipped JSON answers ' +
    '(5-20 KB); keys drawn at random from 1e6 at 40 requests/s, so the cache fills in about 125 s, ' +
    'then evicts one entry per insert.',
  phases: [
    { name: 'idle-before', seconds: 10 },
    {
      name: 'steady',
      seconds: 360,
      load: { connections: 8, overallRate: 40, path: () => `/report/${Math.floor(Math.random() * 1e6)}` },
    },
  ],
};

function main() {
  const Database = require('better-sqlite3');
  const fastify = require('fastify')();
  const zlib = require('node:zlib');
  const crypto = require('node:crypto');

  const ROWS = 20_000;
  const MAX_ENTRIES = 5_000;
  const db = new Database(':memory:');
  db.exec(
    'CREATE TABLE items (id INTEGER PRIMARY KEY, category TEXT, name TEXT, description TEXT, price REAL, stock INTEGER, token TEXT)',
  );
  const adjectives = ['red', 'small', 'heavy', 'quiet', 'bright', 'old', 'smooth', 'cheap', 'rare', 'fast'];
  const nouns = ['lamp', 'chair', 'kettle', 'drill', 'bicycle', 'clock', 'jacket', 'tent', 'camera', 'desk'];
  const pick = (xs, i) => xs[i % xs.length];
  const insert = db.prepare('INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= ROWS; i++) {
      const words = Array.from({ length: 12 + (i % 9) }, (_, k) =>
        pick(k % 2 ? nouns : adjectives, i * 7 + k * 13),
      );
      insert.run(
        i,
        pick(nouns, i * 3),
        `${pick(adjectives, i)} ${pick(nouns, i * 11)} ${i}`,
        words.join(' '),
        (i % 997) / 10,
        i % 50,
        crypto.randomBytes(120).toString('base64'), // an opaque token: text that barely compresses
      );
    }
  })();
  const page = db.prepare('SELECT * FROM items WHERE id > ? ORDER BY id LIMIT ?');

  const cache = new Map();
  let full = false;
  fastify.get('/report/:key', async (req, reply) => {
    const key = Number(req.params.key) || 0;
    let body = cache.get(key);
    if (body) {
      cache.delete(key);
      cache.set(key, body);
    } else {
      const rows = page.all(key % (ROWS - 120), 40 + (key % 91));
      body = zlib.gzipSync(JSON.stringify({ key, generatedAt: new Date().toISOString(), rows }));
      cache.set(key, body);
      if (cache.size > MAX_ENTRIES) cache.delete(cache.keys().next().value);
      if (!full && cache.size === MAX_ENTRIES) {
        full = true;
        console.log(`event cache-full ${cache.size} entries`);
      }
    }
    reply.header('content-encoding', 'gzip').type('application/json');
    return body;
  });

  fastify.listen({ port: 0, host: '127.0.0.1' }).then(() => {
    console.log(`listening on http://127.0.0.1:${fastify.server.address().port}`);
  });
}

if (require.main === module) main();
