import { lookup } from "node:dns/promises";
import { isIP, Socket, type AddressInfo, type Server } from "node:net";
import { loadNativePart } from "./native.js";

/**
 * The edge servers' listening sockets.
 *
 * A single edge, or a platform without the native part, listens the usual
 * way. On the plain HTTP port, each edge worker of `portico up` binds a
 * listening socket of its own to the shared address and port with
 * `SO_REUSEPORT` (native/reuse-port.c), as nginx's `listen ... reuseport`
 * does. The kernel then spreads new connections over the workers by a hash
 * of each connection's addresses and ports, and each worker accepts only
 * from its own queue. With one shared socket, whichever worker woke first
 * took every connection waiting, so a burst of new connections landed on one
 * worker and had to be handed on through the primary (balance.ts), which
 * held up both workers while it lasted. A hash split is not exact (64
 * connections split 26 and 38 once), and moving idle keep-alive connections
 * between requests evens it out.
 *
 * The TLS port keeps one socket that the workers share. A TLS connection's
 * state is in the worker that made the handshake, so the connection cannot
 * move once it is served. Handing it on before its first byte is read is the
 * only way to even out a split there.
 *
 * Connections waiting in a worker's queue when that worker exits are reset,
 * as with nginx. The other workers' queues are untouched.
 */

interface ReusePortAddon {
  reusePortSocket(address: string, port: number): number;
}

const addon = loadNativePart<ReusePortAddon>("reuse_port", "PORTICO_NO_REUSEPORT");

/** Whether this process can bind listening sockets with `SO_REUSEPORT`. */
export const reusePortAvailable = addon !== undefined;

/**
 * Listens on `host:port` and returns the bound port (the chosen one when
 * `port` is 0). With `reusePort`, `port` must be a fixed port, and the
 * socket joins the group of sockets bound to it with `SO_REUSEPORT`.
 */
export async function listenOn(server: Server, port: number, host: string, reusePort = false): Promise<number> {
  let handle: Socket | undefined;
  if (reusePort) {
    if (addon === undefined) {
      throw new Error("cannot bind with SO_REUSEPORT: build/Release/reuse_port.node is missing; run npm install on Linux to build it");
    }
    if (port === 0) throw new Error("invalid port 0 for an SO_REUSEPORT listener: a fixed port is required");
    const address = isIP(host) === 0 ? (await lookup(host)).address : host;
    const fd = addon.reusePortSocket(address, port);
    // A net.Socket is how Node.js wraps a descriptor for listen(). It never reads or writes:
    // once the server listens, the server owns the descriptor and closes it.
    handle = new Socket({ fd, readable: false, writable: false });
  }
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error): void => {
      handle?.destroy();
      reject(error);
    };
    server.once("error", failed);
    const listening = (): void => {
      server.off("error", failed);
      resolve();
    };
    if (handle !== undefined) server.listen(handle, listening);
    else server.listen(port, host, listening);
  });
  return (server.address() as AddressInfo).port;
}
