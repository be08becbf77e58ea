// The ceiling of HTTP/2 over Node.js's TLS layer on this machine: h2-frames.cjs over Node.js's
// TLS sockets, with one preallocated HEADERS and DATA pair per request.
//   KEY=server.key CERT=server.crt PORT=8097 SIZE=1024 WORKERS=2 node bench/edge/limits/h2-raw-server.cjs
'use strict';
const cluster = require('node:cluster');
const { readFileSync } = require('node:fs');
const tls = require('node:tls');
const { SETTINGS, connectionReader } = require('./h2-frames.cjs');

const port = Number(process.env.PORT || 8097);
const size = Number(process.env.SIZE || 1024);
const workers = Number(process.env.WORKERS || 1);
// Each worker accepts its own connections, as the edge's workers do.
cluster.schedulingPolicy = cluster.SCHED_NONE;

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const options = { key: readFileSync(process.env.KEY), cert: readFileSync(process.env.CERT), ALPNProtocols: ['h2'] };
  tls
    .createServer(options, (socket) => {
      socket.setNoDelay(true);
      socket.write(SETTINGS);
      socket.on('data', connectionReader(size, (buffer) => socket.write(buffer)));
      socket.on('error', () => {});
    })
    .listen(port, '127.0.0.1');
}
