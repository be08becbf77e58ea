import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { test, type TestContext } from "node:test";
import {
  ConnectionSpread,
  handOffThreshold,
  KERNEL_SPREAD_SETTLE_MS,
  MAX_HANDOFFS_PER_SECOND,
  MOVE_AFTER_MS,
  WorkerConnectionGate,
  type BalanceMessage,
} from "../../src/edge/balance.js";

/** Returns a stand-in for an accepted socket: the gate only listens for its close. */
function fakeSocket(): Socket & EventEmitter {
  return new EventEmitter() as Socket & EventEmitter;
}

test("hand-off threshold adds a slack", () => {
  assert.equal(handOffThreshold(0), 2);
  assert.equal(handOffThreshold(8), 10);
  assert.equal(handOffThreshold(32), 36);
  assert.equal(handOffThreshold(100), 113);
});

test("gate keeps connections until told a share", () => {
  const sent: BalanceMessage[] = [];
  const gate = new WorkerConnectionGate((message) => {
    sent.push(message);
    return true;
  });
  for (let i = 0; i < 10; i++) assert.equal(gate.admit(fakeSocket(), "http"), true);
  assert.equal(gate.openConnections, 10);
  // The eighth connection is a change large enough to report at once, and nothing is handed on.
  assert.deepEqual(sent, [{ kind: "edge.connections", open: 8, adopted: 0 }]);
  gate.close();
});

test("gate hands on connections above its share", () => {
  const handed: Array<{ message: BalanceMessage; socket: Socket | undefined }> = [];
  const gate = new WorkerConnectionGate((message, socket) => {
    handed.push({ message, socket });
    return true;
  });
  gate.setShare(4);
  const sockets = Array.from({ length: 8 }, () => fakeSocket());
  const admitted = sockets.map((socket) => gate.admit(socket, "https"));
  // Six are kept (the share of 4 plus the slack of 2), and the next two go to the primary.
  assert.deepEqual(admitted, [true, true, true, true, true, true, false, false]);
  assert.equal(gate.openConnections, 6);
  assert.equal(handed.length, 2);
  assert.deepEqual(handed[0]!.message, { kind: "edge.handoff", port: "https", open: 6, adopted: 0 });
  assert.equal(handed[0]!.socket, sockets[6]);

  // A closed connection makes room again, and adopted ones count as open.
  sockets[0]!.emit("close");
  assert.equal(gate.openConnections, 5);
  assert.equal(gate.admit(fakeSocket(), "http"), true);
  gate.adopted(fakeSocket());
  assert.equal(gate.openConnections, 7);
  assert.equal(gate.admit(fakeSocket(), "http"), false);
  assert.deepEqual(handed.at(-1)!.message, { kind: "edge.handoff", port: "http", open: 7, adopted: 1 });
  gate.close();
});

test("kernel-spread gate waits for excess", (t) => {
  t.mock.timers.enable({ apis: ["Date"], now: 1_000_000 });
  const handed: BalanceMessage[] = [];
  const gate = new WorkerConnectionGate((message) => {
    if (message.kind === "edge.handoff") handed.push(message);
    return true;
  });
  gate.spreadByKernel("http");
  gate.setShare(0);
  // A burst from idle: the share of 0 lags, and every connection stays.
  const burst = Array.from({ length: 32 }, () => fakeSocket());
  for (const socket of burst) assert.equal(gate.admit(socket, "http"), true);
  assert.equal(handed.length, 0);
  // The reports catch up: 32 of 64 is the share, and the worker is within it.
  gate.setShare(32);
  t.mock.timers.tick(KERNEL_SPREAD_SETTLE_MS * 2);
  for (let i = 0; i < 4; i++) assert.equal(gate.admit(fakeSocket(), "http"), true);
  assert.equal(handed.length, 0);

  // At the threshold (36) now, and still within the settling time: kept.
  t.mock.timers.tick(KERNEL_SPREAD_SETTLE_MS - 1);
  assert.equal(gate.admit(fakeSocket(), "http"), true);
  assert.equal(handed.length, 0);
  // After it, the excess has lasted, and the next new connection goes to the primary.
  t.mock.timers.tick(1);
  assert.equal(gate.admit(fakeSocket(), "http"), false);
  assert.equal(handed.length, 1);

  // Dropping below the threshold starts the wait again.
  burst[0]!.emit("close");
  burst[1]!.emit("close");
  assert.equal(gate.admit(fakeSocket(), "http"), true);
  assert.equal(gate.admit(fakeSocket(), "http"), true);
  assert.equal(handed.length, 1);
  t.mock.timers.tick(KERNEL_SPREAD_SETTLE_MS);
  assert.equal(gate.admit(fakeSocket(), "http"), false);
  assert.equal(handed.length, 2);
  // The TLS port's shared socket is not spread by the kernel: its connections go on at once.
  burst[2]!.emit("close");
  burst[3]!.emit("close");
  assert.equal(gate.admit(fakeSocket(), "http"), true);
  assert.equal(gate.admit(fakeSocket(), "https"), false);
  assert.equal(handed.length, 3);
  gate.close();
});

test("gate moves connections to share", (t) => {
  t.mock.timers.enable({ apis: ["Date"], now: 2_000_000 });
  const moved: BalanceMessage[] = [];
  const gate = new WorkerConnectionGate((message) => {
    if (message.kind === "edge.handoff") moved.push(message);
    return true;
  });
  const sockets = Array.from({ length: 12 }, () => fakeSocket());
  for (const socket of sockets) assert.equal(gate.admit(socket, "http"), true);
  // Without a share there is nothing to compare with.
  assert.equal(gate.wantsToMove(), false);
  gate.setShare(8);
  assert.equal(gate.wantsToMove(), false, "not before the excess has lasted");
  assert.equal(gate.move(sockets[0]!), false);
  t.mock.timers.tick(MOVE_AFTER_MS);
  assert.equal(gate.wantsToMove(), true);

  // 12 open against a share of 8: three move, in one turn, before any socket has closed.
  const results = sockets.slice(0, 5).map((socket) => gate.move(socket));
  assert.deepEqual(results, [true, true, true, false, false]);
  assert.deepEqual(
    moved.map((message) => message.kind === "edge.handoff" && message.open),
    [11, 10, 9],
  );
  assert.equal(gate.openConnections, 9);
  assert.equal(gate.wantsToMove(), false);
  // Their sockets close here once detached, and the count stays.
  for (const socket of sockets.slice(0, 3)) socket.emit("close");
  assert.equal(gate.openConnections, 9);
  assert.equal(gate.wantsToMove(), false);

  // A viewer closing elsewhere lowers the share, so the excess must last again before more move.
  gate.setShare(6);
  assert.equal(gate.wantsToMove(), false);
  t.mock.timers.tick(MOVE_AFTER_MS);
  assert.equal(gate.move(sockets[3]!), true);
  assert.equal(gate.move(sockets[4]!), true);
  assert.equal(gate.move(sockets[5]!), false);
  assert.equal(gate.openConnections, 7);
  gate.close();
  assert.equal(gate.wantsToMove(), false);
});

test("gate keeps what it cannot send", () => {
  const gate = new WorkerConnectionGate(() => false);
  gate.setShare(0);
  for (let i = 0; i < 5; i++) assert.equal(gate.admit(fakeSocket(), "http"), true);
  assert.equal(gate.openConnections, 5);
  gate.close();
});

test("gate stops handing on when closed", () => {
  let handed = 0;
  const gate = new WorkerConnectionGate(() => {
    handed += 1;
    return true;
  });
  gate.setShare(0);
  gate.close();
  for (let i = 0; i < 5; i++) assert.equal(gate.admit(fakeSocket(), "http"), true);
  assert.equal(handed, 0);
});

test("gate hands on at a bounded rate", () => {
  let handed = 0;
  const gate = new WorkerConnectionGate((message) => {
    if (message.kind === "edge.handoff") handed += 1;
    return true;
  });
  gate.setShare(0);
  // Past the allowance, connections are served here. The bound allows for a new second starting midway.
  const attempts = 2 + 3 * MAX_HANDOFFS_PER_SECOND;
  let admitted = 0;
  for (let i = 0; i < attempts; i++) if (gate.admit(fakeSocket(), "http")) admitted += 1;
  assert.ok(handed <= 2 * MAX_HANDOFFS_PER_SECOND, `${handed} connections handed on`);
  assert.equal(admitted + handed, attempts);
  gate.close();
});

/** Returns a gate with a share of 2 on a clock that `advance` moves, and a count of its hand-offs. */
function gateOnClock(t: TestContext): { gate: WorkerConnectionGate; advance: (ms: number) => void; handed: () => number } {
  let nowMs = 1_000_000;
  t.mock.method(Date, "now", () => nowMs);
  let handed = 0;
  const gate = new WorkerConnectionGate(() => {
    handed += 1;
    return true;
  });
  gate.setShare(2);
  return { gate, advance: (ms) => (nowMs += ms), handed: () => handed };
}

test("gate keeps short connections", (t) => {
  const { gate, advance, handed } = gateOnClock(t);
  // Six connections open and close within one second: they lasted under a second on average.
  for (let i = 0; i < 6; i++) {
    const socket = fakeSocket();
    assert.equal(gate.admit(socket, "http"), true);
    socket.emit("close");
  }
  advance(1000);
  // In the next second, more connections closed soon after opening than are open, so none is handed on.
  for (let i = 0; i < 6; i++) assert.equal(gate.admit(fakeSocket(), "http"), true);
  assert.equal(handed(), 0);
  // A second later the closes have aged out, and the worker above its share hands on again.
  advance(2000);
  assert.equal(gate.admit(fakeSocket(), "http"), false);
  assert.equal(handed(), 1);
  gate.close();
});

test("gate hands on after long connections close", (t) => {
  const { gate, advance, handed } = gateOnClock(t);
  const sockets = Array.from({ length: 4 }, () => fakeSocket());
  for (const socket of sockets) assert.equal(gate.admit(socket, "http"), true);
  // They close after 5 s, as a benchmark's connections do before the next one opens its own.
  advance(5000);
  for (const socket of sockets) socket.emit("close");
  advance(1000);
  for (let i = 0; i < 4; i++) assert.equal(gate.admit(fakeSocket(), "http"), true);
  assert.equal(gate.admit(fakeSocket(), "http"), false);
  assert.equal(handed(), 1);
  gate.close();
});

test("gate reports a large change at once", () => {
  const reports: BalanceMessage[] = [];
  const gate = new WorkerConnectionGate((message) => {
    reports.push(message);
    return true;
  });
  const sockets = Array.from({ length: 40 }, () => fakeSocket());
  for (const socket of sockets) gate.admit(socket, "http");
  // Reported at once at each change of 8, or of a quarter of the last report when that is more.
  assert.deepEqual(
    reports.map((report) => (report.kind === "edge.connections" ? report.open : -1)),
    [8, 16, 24, 32, 40],
  );
  for (const socket of sockets.slice(0, 30)) socket.emit("close");
  assert.deepEqual(
    reports.slice(5).map((report) => (report.kind === "edge.connections" ? report.open : -1)),
    [30, 22, 14],
  );
  gate.close();
});

test("gate reports its open connections", async () => {
  const reports: BalanceMessage[] = [];
  const gate = new WorkerConnectionGate((message) => {
    reports.push(message);
    return true;
  });
  const socket = fakeSocket();
  gate.admit(socket, "http");
  gate.admit(fakeSocket(), "http");
  for (let waited = 0; reports.length === 0 && waited < 2_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(reports, [{ kind: "edge.connections", open: 2, adopted: 0 }]);
  socket.emit("close");
  for (let waited = 0; reports.length === 1 && waited < 2_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(reports[1], { kind: "edge.connections", open: 1, adopted: 0 });
  gate.close();
});

test("spread picks the worker with fewest", () => {
  const spread = new ConnectionSpread();
  spread.report(1, 10, 0);
  spread.report(2, 4, 0);
  spread.report(3, 6, 0);
  assert.equal(spread.share(), 7);
  assert.equal(spread.pick(1), 2);
  assert.equal(spread.pick(1), 2);
  // Worker 2 now counts 6 with the two passed to it, as many as worker 3: a tie keeps the first found.
  assert.equal(spread.pick(1), 2);
  assert.equal(spread.pick(1), 3);
  assert.equal(spread.handedOff, 4);
  assert.deepEqual(spread.counts(), [
    [1, 10],
    [2, 4],
    [3, 6],
  ]);
});

test("spread counts passed connections until adopted", () => {
  const spread = new ConnectionSpread();
  spread.report(1, 2, 0);
  spread.report(2, 2, 0);
  // Worker 1 keeps handing on while it has not read the connections passed to it.
  assert.equal(spread.pick(1), 1);
  spread.report(1, 2, 0);
  assert.equal(spread.pick(1), 2);
  spread.report(1, 2, 0);
  assert.equal(spread.pick(1), 1);
  assert.equal(spread.share(), 4);
  // Once worker 1 reports both adopted, they are in its open count instead.
  spread.report(1, 4, 2);
  spread.report(2, 3, 1);
  assert.equal(spread.share(), 4);
});

test("spread sends back when no one has fewer", () => {
  const spread = new ConnectionSpread();
  spread.report(1, 3, 0);
  spread.report(2, 5, 0);
  assert.equal(spread.pick(1), 1);
  // A connection sent back to its worker is not counted as handed on.
  assert.equal(spread.handedOff, 0);
  spread.remove(2);
  assert.equal(spread.share(), 4);
  assert.equal(spread.pick(7), 1);
  assert.equal(spread.handedOff, 1);
  spread.remove(1);
  assert.equal(spread.share(), 0);
});
