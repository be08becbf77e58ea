import assert from "node:assert/strict";
import cluster from "node:cluster";
import { mkdtemp, readFile, readdir, readlink, rm } from "node:fs/promises";
import { lookup } from "node:dns/promises";
import { Agent } from "node:http";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { EmbeddedBus } from "../../src/cluster/embedded.js";
import { silentLogger } from "../../src/common/logger.js";
import { listenOn, reusePortAvailable } from "../../src/edge/listen.js";
import type { WorkerEdge } from "../../src/edge/workers.js";
import type { RollupTargets } from "../../src/metrics/edge-rollup.js";
import { request, sleep, startTwoWorkers, workersHolding } from "./helpers.js";

const skip = reusePortAvailable ? false : "native/reuse-port.c was not built";

const rollups: RollupTargets = { addMinute: () => {}, prometheus: undefined, records: undefined, countDropped: () => {} };

function startWorkers(dataDir: string, ports: { httpPort: number; httpsPort: number }, reusePort?: boolean): Promise<WorkerEdge> {
  const bus = new EmbeddedBus(silentLogger());
  return startTwoWorkers("edge-rp", dataDir, bus, rollups, undefined, { ...ports, ...(reusePort === undefined ? {} : { reusePort }) });
}

/**
 * Returns the listening IPv4 sockets on `port`, and for each, the pids of the processes of this
 * test that hold it.
 */
async function listenersOn(port: number): Promise<{ sockets: number; holders: number[] }> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const inodes = new Set<string>();
  for (const line of (await readFile("/proc/net/tcp", "utf8")).split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    // State 0A is LISTEN.
    if (fields[1] === local && fields[3] === "0A") inodes.add(`socket:[${fields[9]}]`);
  }
  const pids = [process.pid, ...Object.values(cluster.workers ?? {}).map((worker) => worker?.process.pid)];
  const holders: number[] = [];
  for (const pid of pids) {
    if (pid === undefined) continue;
    const links = await Promise.all(
      (await readdir(`/proc/${pid}/fd`).catch(() => [])).map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")),
    );
    // A descriptor inherited twice counts once per process.
    for (const inode of inodes) if (links.includes(inode)) holders.push(pid);
  }
  return { sockets: inodes.size, holders: holders.sort((a, b) => a - b) };
}

/** Listens on a free port with a plain server, which a test closes. */
async function plainServer(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

async function freePort(): Promise<number> {
  const server = await plainServer();
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Sends a request for a host no distribution serves to `port`, and returns the status (403 from any worker). */
async function statusOfUnknownHost(port: number): Promise<number> {
  return (await request(port, "unknown.portico.localhost", "/", { headers: { connection: "close" } })).status;
}

/** Opens `count` keep-alive connections to `port` at once, one request each, and returns the pids of the workers holding them. */
async function holdersOfNewConnections(t: import("node:test").TestContext, port: number, count: number): Promise<Set<number>> {
  const agents = Array.from({ length: count }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
  for (const agent of agents) t.after(() => agent.destroy());
  const responses = await Promise.all(agents.map((agent) => request(port, "unknown.portico.localhost", "/", { agent })));
  for (const response of responses) assert.equal(response.status, 403);
  const clientPorts = agents.map((agent) => Object.values(agent.freeSockets)[0]?.[0]?.localPort);
  for (const clientPort of clientPorts) assert.ok(clientPort !== undefined, "the connection stays open");
  const holders = await workersHolding(port, clientPorts as number[]);
  assert.equal(holders.size, count, "a worker holds each connection");
  return new Set(holders.values());
}

test("plain port socket per worker", { skip }, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "portico-reuse-port-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const edge = await startWorkers(dataDir, { httpPort: 0, httpsPort: 0 });
  t.after(() => edge.close());

  const listeners = await listenersOn(edge.httpPort);
  assert.equal(listeners.sockets, 2);
  assert.equal(new Set(listeners.holders).size, 2, "one per worker");
  assert.ok(!listeners.holders.includes(process.pid), "the primary holds none");
  // The TLS port has one socket, which the primary made and both workers accept from.
  const tls = await listenersOn(edge.httpsPort);
  assert.equal(tls.sockets, 1);
  assert.equal(tls.holders.length, 3);
  // The kernel hashes each new connection to one of the two. That all 24 go to one worker has
  // a chance of 2 in 2^24. Nothing passes through the primary: the burst is over before an
  // uneven split could last long enough to be handed on.
  assert.deepEqual([...(await holdersOfNewConnections(t, edge.httpPort, 24))].sort(), listeners.holders.sort());
  assert.equal(edge.handedConnections(), 0);

  // A worker that dies takes its socket along, and its replacement binds a new one.
  const [first] = listeners.holders;
  const victim = Object.values(cluster.workers ?? {}).find((worker) => worker?.process.pid === first)!;
  await new Promise((resolve) => {
    victim.once("exit", resolve);
    victim.process.kill("SIGKILL");
  });
  let holders: number[] = [];
  for (let waited = 0; waited < 10_000; waited += 50) {
    ({ holders } = await listenersOn(edge.httpPort));
    if (holders.length === 2 && edge.liveWorkers() === 2) break;
    await sleep(50);
  }
  assert.equal(holders.length, 2, "the replacement listens");
  assert.ok(!holders.includes(first!), "on a socket of its own");
  assert.equal((await listenersOn(edge.httpsPort)).sockets, 1);
  for (let i = 0; i < 20; i++) assert.equal(await statusOfUnknownHost(edge.httpPort), 403);
});

test("reusePort off shares one socket", { skip }, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "portico-reuse-port-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const edge = await startWorkers(dataDir, { httpPort: 0, httpsPort: 0 }, false);
  t.after(() => edge.close());
  // The primary's socket, which both workers were given.
  const { sockets, holders } = await listenersOn(edge.httpPort);
  assert.equal(sockets, 1);
  assert.equal(holders.length, 3, `holders ${holders.join(", ")}`);
  assert.equal(await statusOfUnknownHost(edge.httpPort), 403);
});

test("occupied port stops the start", { skip }, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "portico-reuse-port-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));

  // A plain listener on the HTTP port.
  const occupant = await plainServer();
  t.after(() => new Promise((resolve) => occupant.close(resolve)));
  const occupiedPort = (occupant.address() as AddressInfo).port;
  await assert.rejects(startWorkers(dataDir, { httpPort: occupiedPort, httpsPort: await freePort() }), { code: "EADDRINUSE" });

  // An edge with SO_REUSEPORT sockets on both ports: a second edge may not join them.
  const ports = { httpPort: await freePort(), httpsPort: await freePort() };
  const edge = await startWorkers(dataDir, ports);
  t.after(() => edge.close());
  await assert.rejects(startWorkers(join(dataDir, "second"), ports), { code: "EADDRINUSE" });
  assert.equal((await listenersOn(ports.httpPort)).sockets, 2, "the first edge's sockets are untouched");
  assert.equal(await statusOfUnknownHost(ports.httpPort), 403);
});

test("listenOn binds with reusePort", { skip }, async (t) => {
  const server = createServer((socket) => socket.end("hello"));
  await assert.rejects(listenOn(server, 0, "127.0.0.1", true), /fixed port/);
  await assert.rejects(listenOn(server, await freePort(), "not an address.invalid", true), { code: "ENOTFOUND" });

  const occupant = await plainServer();
  t.after(() => new Promise((resolve) => occupant.close(resolve)));
  await assert.rejects(listenOn(server, (occupant.address() as AddressInfo).port, "127.0.0.1", true), {
    code: "EADDRINUSE",
    syscall: "bind",
  });

  // A name is resolved first, as server.listen resolves it, and two sockets share the port.
  const port = await freePort();
  const other = createServer((socket) => socket.end("hello"));
  const { address } = await lookup("localhost");
  assert.equal(await listenOn(server, port, "localhost", true), port);
  t.after(() => new Promise((resolve) => server.close(resolve)));
  assert.equal((server.address() as AddressInfo).address, address);
  assert.equal(await listenOn(other, port, address, true), port);
  t.after(() => new Promise((resolve) => other.close(resolve)));
  if (address === "127.0.0.1") assert.equal((await listenersOn(port)).sockets, 2);
});

test("uneven split evens out", { skip, timeout: 60_000 }, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "portico-reuse-port-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const edge = await startWorkers(dataDir, { httpPort: 0, httpsPort: 0 });
  t.after(() => edge.close());

  // Connections opened one at a time, each closed unless it helps make a split of 10 and 2. The
  // first worker seen gets 10, the other 2.
  let busy: number | undefined;
  const byWorker = new Map<number, Agent[]>();
  const total = (): number => [...byWorker.values()].reduce((sum, agents) => sum + agents.length, 0);
  for (let opened = 0; opened < 300 && total() < 12; opened++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    assert.equal((await request(edge.httpPort, "unknown.portico.localhost", "/", { agent })).status, 403);
    const clientPort = Object.values(agent.freeSockets)[0]?.[0]?.localPort;
    const pid = (await workersHolding(edge.httpPort, [clientPort!])).get(clientPort!);
    assert.ok(pid !== undefined, "a worker holds the connection");
    busy ??= pid;
    const agents = byWorker.get(pid) ?? [];
    if (agents.length < (pid === busy ? 10 : 2)) byWorker.set(pid, [...agents, agent]);
    else agent.destroy();
  }
  const counts = (): number[] => [...byWorker.values()].map((agents) => agents.length);
  assert.deepEqual(counts(), [10, 2]);

  // Each connection sends a request every 50 ms. Within a few seconds the busier worker moves
  // connections between requests, until it has at most its share (6) plus 1.
  const agents = [...byWorker.values()].flat();
  const clientPorts = (): number[] => agents.map((agent) => Object.values(agent.freeSockets)[0]?.[0]?.localPort ?? 0);
  const firstPorts = clientPorts();
  let split: number[] = [];
  for (let round = 0; round < 100; round++) {
    const responses = await Promise.all(agents.map((agent) => request(edge.httpPort, "unknown.portico.localhost", `/r${round}`, { agent })));
    for (const response of responses) {
      assert.equal(response.status, 403);
      assert.match(response.body.toString(), /no distribution serves this host/);
    }
    const holders = await workersHolding(edge.httpPort, clientPorts());
    split = [...[...holders.values()].reduce((byPid, pid) => byPid.set(pid, (byPid.get(pid) ?? 0) + 1), new Map<number, number>()).values()];
    if (holders.size === 12 && split.length === 2 && Math.max(...split) <= 7) break;
    await sleep(50);
  }
  assert.ok(Math.max(...split) <= 7, `split ${split.join(" and ")}`);
  // The viewers kept their connections: each moved one went on without a reconnect.
  assert.deepEqual(clientPorts(), firstPorts);
  assert.ok(edge.handedConnections() >= 3, `${edge.handedConnections()} moved`);
});
