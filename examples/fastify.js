// Health endpoint in a Fastify app.
const Fastify = require('fastify');
const fragstat = require('fragstat');

const app = Fastify();
app.get('/health/memory', async () => fragstat.health());

// PORT unset or 0: any free port.
app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' }).then((address) => {
  console.log(`listening on ${address}`);
});
