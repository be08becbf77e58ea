// The ceiling of node:http2 on this machine: a TLS server that answers every stream with one
// preallocated body and does no other work. Used to decide whether the edge could serve HTTP/2
// hits through node:http2.
//   KEY=server.key CERT=server.crt PORT=8099 SIZE=1024 WORKERS=2 node bench/edge/limits/node-http2-server.cjs
'use strict';
const cluster = require('node:cluster');
const { readFileSync } = require('node:fs');
const http2 = require('node:http2');

const port = Number(process.env.PORT || 8099);
const size = Number(process.env.SIZE || 1024);
const workers = Number(process.env.WORKERS || 1);

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const body = Buffer.alloc(size, 97);
  const headers = { ':status': 200, 'content-type': 'application/octet-stream', 'content-length': size };
  const server = http2.createSecureServer({ key: readFileSync(process.env.KEY), cert: readFileSync(process.env.CERT) });
  server.on('stream', (stream) => {
    stream.respond(headers);
    stream.end(body);
  });
  server.listen(port, '127.0.0.1');
}
