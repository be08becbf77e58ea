// The ceiling of Node.js's TLS layer on this machine: an HTTP/1.1-over-TLS server that finds
// the end of each request head and writes one preallocated response. It parses nothing, so it
// is a limit to compare with nginx's HTTPS rate, not a server.
//   KEY=server.key CERT=server.crt PORT=8098 SIZE=1024 WORKERS=2 node bench/edge/limits/tls-raw-server.cjs
'use strict';
const cluster = require('node:cluster');
const { readFileSync } = require('node:fs');
const tls = require('node:tls');

const port = Number(process.env.PORT || 8098);
const size = Number(process.env.SIZE || 1024);
const workers = Number(process.env.WORKERS || 1);

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const head = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n`;
  const response = Buffer.concat([Buffer.from(head, 'latin1'), Buffer.alloc(size, 97)]);
  const end = Buffer.from('\r\n\r\n');
  const options = { key: readFileSync(process.env.KEY), cert: readFileSync(process.env.CERT), ALPNProtocols: ['http/1.1'] };
  tls
    .createServer(options, (socket) => {
      let pending = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let start = 0;
        let found;
        while ((found = pending.indexOf(end, start)) !== -1) {
          socket.write(response);
          start = found + 4;
        }
        pending = pending.subarray(start);
      });
      socket.on('error', () => {});
    })
    .listen(port, '127.0.0.1');
}
