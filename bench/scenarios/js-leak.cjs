// js-leak: a fastify login service that leaks JavaScript objects. GET /login/<user> builds a
// session (a few KB of plain objects and strings: a visit history, roles, a profile), stores it
// in a Map, and subscribes a listener closure holding the session to a long-lived EventEmitter;
// neither is ever removed. No Buffer is kept: everything lives in V8's heap.
// Expected verdict: js-heap-growth (RSS grows steadily and V8's heap explains most of it).
'use strict';

exports.scenario = {
  expected: 'js-heap-growth',
  notes:
    'fastify: each request stores a ~4 KB session of plain objects and strings in a Map and adds an ' +
    'EventEmitter listener closure holding it; neither is removed. No Buffers kept.',
  phases: [
    { name: 'idle-before', seconds: 10 },
    {
      name: 'leak',
      seconds: 240,
      load: { connections: 8, overallRate: 100, path: () => `/login/user${Math.floor(Math.random() * 1e5)}` },
    },
  ],
};

function main() {
  const { EventEmitter } = require('node:events');
  const fastify = require('fastify')();

  const configChanges = new EventEmitter();
  configChanges.setMaxListeners(0); // the leak would otherwise warn
  const sessions = new Map();
  let next = 0;

  fastify.get('/login/:user', async (req) => {
    const id = ++next;
    const user = req.params.user;
    const session = {
      id,
      user,
      createdAt: new Date().toISOString(),
      roles: ['reader', id % 7 === 0 ? 'admin' : 'writer'],
      profile: { displayName: `${user} #${id}`, locale: 'en-GB', theme: id % 2 ? 'dark' : 'light' },
      history: [],
    };
    for (let i = 0; i < 24; i++) {
      session.history.push({
        at: Date.now() - i * 1000,
        path: `/catalogue/${id}/items/${i}?ref=${user}`,
        note: `viewed item ${i} of page ${id % 40} after a search for "${user}-${i * id}"`,
      });
    }
    sessions.set(id, session);
    // The listener is never removed, and its closure keeps the session alive.
    configChanges.on('change', (config) => {
      session.config = config;
    });
    return { id, sessions: sessions.size };
  });

  fastify.listen({ port: 0, host: '127.0.0.1' }).then(() => {
    console.log(`listening on http://127.0.0.1:${fastify.server.address().port}`);
  });
}

if (require.main === module) main();
