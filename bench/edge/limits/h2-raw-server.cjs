// The ceiling of HTTP/2 over Node.js's TLS layer on this machine. The server reads frame
// headers, acknowledges SETTINGS and PING, and responds to every HEADERS frame that ends its
// stream with one preallocated HEADERS and DATA pair in one write. It decodes no header block
// and keeps no flow control, so it is a limit to compare with nginx's HTTP/2 rate, not a server.
//   KEY=server.key CERT=server.crt PORT=8097 SIZE=1024 WORKERS=2 node bench/edge/limits/h2-raw-server.cjs
'use strict';
const cluster = require('node:cluster');
const { readFileSync } = require('node:fs');
const tls = require('node:tls');

const port = Number(process.env.PORT || 8097);
const size = Number(process.env.SIZE || 1024);
const workers = Number(process.env.WORKERS || 1);
// Each worker accepts its own connections, as the edge's workers do.
cluster.schedulingPolicy = cluster.SCHED_NONE;

/** Returns a frame header (RFC 9113 section 4.1) for stream 0. Responses patch in their stream id. */
function frameHeader(length, type, flags) {
  const header = Buffer.alloc(9);
  header.writeUIntBE(length, 0, 3);
  header[3] = type;
  header[4] = flags;
  return header;
}

/** Encodes an HPACK literal without indexing whose name is static table entry `index` (RFC 7541 section 6.2.2). */
function literal(index, value) {
  return Buffer.concat([Buffer.from([0x0f, index - 15, value.length]), Buffer.from(value, 'latin1')]);
}

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  // In the static table, :status 200 is entry 8, content-length 28 and content-type 31.
  const block = Buffer.concat([Buffer.from([0x88]), literal(28, String(size)), literal(31, 'application/octet-stream')]);
  const template = Buffer.concat([frameHeader(block.length, 0x1, 0x4), block, frameHeader(size, 0x0, 0x1), Buffer.alloc(size, 97)]);
  const dataHeaderAt = 9 + block.length;
  const settings = frameHeader(0, 0x4, 0x0);
  const settingsAck = frameHeader(0, 0x4, 0x1);
  const options = { key: readFileSync(process.env.KEY), cert: readFileSync(process.env.CERT), ALPNProtocols: ['h2'] };
  tls
    .createServer(options, (socket) => {
      socket.setNoDelay(true);
      socket.write(settings);
      let pending = Buffer.alloc(0);
      let prefaceLeft = 24;
      socket.on('data', (chunk) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let at = 0;
        if (prefaceLeft > 0) {
          const skipped = Math.min(prefaceLeft, pending.length);
          prefaceLeft -= skipped;
          at = skipped;
        }
        while (pending.length - at >= 9) {
          const length = pending.readUIntBE(at, 3);
          if (pending.length - at < 9 + length) break;
          const type = pending[at + 3];
          const flags = pending[at + 4];
          const streamId = pending.readUInt32BE(at + 5) & 0x7fffffff;
          if (type === 0x1 && (flags & 0x1) !== 0) {
            const out = Buffer.from(template);
            out.writeUInt32BE(streamId, 5);
            out.writeUInt32BE(streamId, dataHeaderAt + 5);
            socket.write(out);
          } else if (type === 0x4 && (flags & 0x1) === 0) {
            socket.write(settingsAck);
          } else if (type === 0x6 && (flags & 0x1) === 0) {
            const ping = Buffer.from(pending.subarray(at, at + 9 + length));
            ping[4] = 0x1;
            socket.write(ping);
          }
          at += 9 + length;
        }
        pending = pending.subarray(at);
      });
      socket.on('error', () => {});
    })
    .listen(port, '127.0.0.1');
}
