// Health endpoint in an Express app; trimming over HTTP enabled behind a (toy) token check.
const express = require('express');
const fragstat = require('fragstat');

const app = express();
app.get('/health/memory', fragstat.healthHandler());

// Without ADMIN_TOKEN set, nobody may trim (not even "Bearer undefined").
const token = process.env.ADMIN_TOKEN;
const requireToken = (req, res, next) =>
  token && req.get('authorization') === `Bearer ${token}` ? next() : res.sendStatus(401);
app.post('/admin/trim', requireToken, fragstat.healthHandler({ allowTrim: true, trimMinIntervalMs: 60_000 }));

// PORT unset or 0: any free port. A busy port is reported (EADDRINUSE), not a TypeError.
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', (err) => {
  if (err) throw err;
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
