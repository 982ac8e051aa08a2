// better-sqlite3 from a pool of 4 worker threads: each worker opens its own connection to one
// database file (WAL mode) in a temporary folder; the main thread answers HTTP and hands requests
// to the workers in turn. PUT /blob/K stores the body (1-100 KiB) under key K; GET /blobs/K/C
// answers the blobs of up to C keys from K on, concatenated. Sends {port} over IPC once listening;
// removes the folder when it ends (SIGTERM, SIGINT, or the driver gone).
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const Database = require('better-sqlite3');

const WORKERS = 4;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cures-sqlite-'));
const file = path.join(dir, 'blobs.db');
let cleaned = false;
function cleanUp() {
  if (cleaned) return;
  cleaned = true;
  fs.rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanUp);
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
process.on('disconnect', () => process.exit(0));

const setup = new Database(file);
setup.pragma('journal_mode = WAL');
setup.exec('CREATE TABLE blobs (key INTEGER PRIMARY KEY, data BLOB NOT NULL, stored_ms REAL NOT NULL)');
setup.close();

const pending = new Map();
let nextId = 0;
const workers = Array.from({ length: WORKERS }, () => {
  const worker = new Worker(path.join(__dirname, 'sqlite-worker.cjs'), { workerData: { file } });
  worker.on('message', ({ id, error, body, json }) => {
    const res = pending.get(id);
    pending.delete(id);
    if (error) {
      res.writeHead(500);
      res.end(error);
    } else if (body) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.end(body);
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    }
  });
  return worker;
});
// The driver's 'gc' (answered by cure.cjs for this thread) reaches the workers' heaps too.
process.on('message', (msg) => {
  if (msg === 'gc') for (const worker of workers) worker.postMessage({ op: 'gc' });
});
let turn = 0;
function dispatch(res, request) {
  const id = nextId++;
  pending.set(id, res);
  workers[turn++ % WORKERS].postMessage({ id, ...request });
}

const server = http.createServer((req, res) => {
  const [, what, key, count] = req.url.split('/');
  if (req.method === 'PUT' && what === 'blob') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => dispatch(res, { op: 'put', key: Number(key), data: Buffer.concat(chunks) }));
  } else if (req.method === 'GET' && what === 'blobs') {
    dispatch(res, { op: 'get', key: Number(key), count: Number(count) });
  } else {
    res.writeHead(404);
    res.end();
  }
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
