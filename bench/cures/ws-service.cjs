// A WebSocket service with permessage-deflate (ws + zlib): every connection keeps its own deflate
// and inflate streams; each message is parsed as JSON, enriched and sent back. Sends {port} over
// IPC once listening.
'use strict';
const { WebSocketServer } = require('ws');

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: { threshold: 1024, concurrencyLimit: 10 },
});
wss.on('connection', (socket) => {
  socket.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    msg.seen = Date.now();
    msg.items = msg.items.map((it) => ({ ...it, score: it.value * 2 }));
    socket.send(JSON.stringify(msg));
  });
});
wss.on('listening', () => process.send({ port: wss.address().port }));
