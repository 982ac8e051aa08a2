// One worker of sqlite-service.cjs: its own connection to the shared database, answering the main
// thread's put and get requests.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require('better-sqlite3');

const db = new Database(workerData.file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 10000');
const put = db.prepare('INSERT OR REPLACE INTO blobs (key, data, stored_ms) VALUES (?, ?, ?)');
const get = db.prepare('SELECT key, data FROM blobs WHERE key >= ? ORDER BY key LIMIT ?');

parentPort.on('message', ({ id, op, key, data, count }) => {
  if (op === 'gc') return globalThis.gc?.();
  try {
    if (op === 'put') {
      const { changes } = put.run(key, data, Date.now());
      parentPort.postMessage({ id, json: { key, bytes: data.length, changes } });
    } else {
      const rows = get.all(key, count);
      parentPort.postMessage({ id, body: Buffer.concat(rows.map((r) => r.data)) });
    }
  } catch (err) {
    parentPort.postMessage({ id, error: String(err) });
  }
});
