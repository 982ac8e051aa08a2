// The service bench/http.mjs loads: the stair-step example (JSON in, gzip out), with a fragstat
// monitor when MONITOR_MS is set (MONITOR_DETAIL=1 for detail samples).
'use strict';
const fragstat = require('..');

if (process.env.MONITOR_MS) {
  const m = fragstat.monitor({
    intervalMs: Number(process.env.MONITOR_MS),
    detail: process.env.MONITOR_DETAIL === '1',
  });
  m.on('sample', () => {});
}
require('../examples/stairstep/service.js');
