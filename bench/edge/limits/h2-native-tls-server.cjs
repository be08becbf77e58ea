// The ceiling of h2-raw-server.cjs with TLS run by OpenSSL in C, through the edge's
// native/viewer-tls.c, so JavaScript handles plaintext only. Each read reaches it as one call
// with the bytes in a shared buffer, and each response leaves with one call that encrypts and
// sends it. It shows what TLS outside Node.js's TLS socket saves per request.
//   KEY=server.key CERT=server.crt PORT=8096 SIZE=1024 WORKERS=2 node bench/edge/limits/h2-native-tls-server.cjs
// `npm install` builds the addon.
'use strict';
const cluster = require('node:cluster');
const { readFileSync } = require('node:fs');
const net = require('node:net');
const { SETTINGS, connectionReader } = require('./h2-frames.cjs');

const port = Number(process.env.PORT || 8096);
const size = Number(process.env.SIZE || 1024);
const workers = Number(process.env.WORKERS || 1);
cluster.schedulingPolicy = cluster.SCHED_NONE;
// The event numbers of native/viewer-tls.c.
const EVENT_SECURE = 1;
const EVENT_DATA = 2;
const EVENT_END = 4;
const EVENT_CLOSE = 5;

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const native = require('../../../build/Release/viewer_tls.node');
  const context = native.createContext(
    readFileSync(process.env.CERT, 'latin1'),
    readFileSync(process.env.KEY, 'latin1'),
    'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256',
    'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
  );
  const shared = native.readBuffer();
  native.setHandler((connection, event, value) => {
    if (event === EVENT_SECURE) native.write(connection.handle, [SETTINGS]);
    else if (event === EVENT_DATA) connection.read(shared.subarray(0, value));
    else if (event === EVENT_END) native.end(connection.handle);
    else if (event === EVENT_CLOSE) connection.socket.destroy();
  });

  net
    .createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
      // The socket stays open and never reads; C reads and writes a duplicate of its descriptor.
      const connection = { socket, handle: undefined, read: undefined };
      connection.read = connectionReader(size, (buffer) => native.write(connection.handle, [buffer]));
      socket.on('error', () => {});
      connection.handle = native.adopt(context, socket._handle.fd, undefined, connection);
      native.pump(connection.handle);
    })
    .listen(port, '127.0.0.1');
}
