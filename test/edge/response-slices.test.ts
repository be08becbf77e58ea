import assert from "node:assert/strict";
import { test } from "node:test";
import { Http1Response, type ResponseSink } from "../../src/edge/http1/response.js";

/** A sink that takes writes but hands nothing to the kernel until `drain()` is called, like a viewer that does not read. */
class StalledSink implements ResponseSink {
  readonly minorVersion = 1;
  readonly writes: Buffer[] = [];
  unsent = 0;
  completed: boolean | undefined;
  watched = 0;
  private destroyed = false;
  private waiters: Array<(open: boolean) => void> = [];

  private flushCallbacks: Array<(error?: Error | null) => void> = [];

  /** `copiesWrites` is true for a sink like a TLS socket, false for a plain one. */
  constructor(readonly copiesWrites = true) {}

  write(data: string | Buffer, onFlushed?: (error?: Error | null) => void): boolean {
    const bytes = typeof data === "string" ? Buffer.from(data, "latin1") : data;
    this.writes.push(bytes);
    this.unsent += bytes.length;
    if (onFlushed !== undefined) this.flushCallbacks.push(onFlushed);
    return this.unsent < 16 * 1024;
  }
  cork(): void {}
  uncork(): void {}
  unsentBytes(): number {
    return this.unsent;
  }
  waitForDrain(): Promise<boolean> {
    this.watched++;
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  watchUnsent(): void {
    this.watched++;
  }
  sendShared(): number {
    return -1;
  }
  unsentWhenDestroyed(): number | undefined {
    return this.destroyed ? this.unsent : undefined;
  }
  keepAlive(): boolean {
    return true;
  }
  finished(_response: Http1Response, complete: boolean): void {
    this.completed = complete;
  }
  /** The viewer read everything written so far. */
  drain(): void {
    this.unsent = 0;
    for (const flushed of this.flushCallbacks.splice(0)) flushed(null);
    for (const resolve of this.waiters.splice(0)) resolve(true);
  }
  close(): void {
    for (const flushed of this.flushCallbacks.splice(0)) flushed(new Error("closed"));
    for (const resolve of this.waiters.splice(0)) resolve(false);
  }
  /** Destroys the socket as the idle timeout does. A destroyed socket reports its pending writes without an error. */
  destroy(): void {
    this.destroyed = true;
    for (const flushed of this.flushCallbacks.splice(0)) flushed(null);
    for (const resolve of this.waiters.splice(0)) resolve(false);
  }
  bodyBytes(): number {
    return this.writes.slice(1).reduce((sum, write) => sum + write.length, 0);
  }
}

const BODY = Buffer.alloc(4 * 1024 * 1024, 0x61);

test("large body waits for a stalled viewer", async () => {
  const sink = new StalledSink();
  const response = new Http1Response(sink);
  response.send(200, ["content-length", String(BODY.length)], BODY);
  // The head and one slice left; the rest waits, so a slow viewer holds one slice unsent.
  assert.equal(sink.writes.length, 2);
  assert.equal(sink.bodyBytes(), 256 * 1024);
  assert.equal(sink.completed, undefined);
  for (let i = 0; i < 100 && sink.bodyBytes() < BODY.length; i++) {
    sink.drain();
    await new Promise((resolve) => setImmediate(resolve));
  }
  // The last slice is written but still in the socket, so the response still keeps the body.
  assert.equal(sink.bodyBytes(), BODY.length);
  assert.equal(sink.completed, undefined);
  sink.drain();
  assert.equal(sink.completed, true);
  assert.ok(Buffer.concat(sink.writes.slice(1)).equals(BODY));
});

test("large body stops when the viewer leaves", async () => {
  const sink = new StalledSink();
  const response = new Http1Response(sink);
  let recorded = -1;
  response.onDone((bytes) => (recorded = bytes));
  response.send(200, ["content-length", String(BODY.length)], BODY);
  sink.close();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(sink.completed, false);
  assert.ok(sink.bodyBytes() < BODY.length);
  assert.ok(recorded > 0 && recorded < BODY.length);
});

test("small body leaves in one go", () => {
  const sink = new StalledSink();
  const response = new Http1Response(sink);
  const body = Buffer.alloc(100 * 1024, 0x62);
  response.send(200, ["content-length", String(body.length)], body);
  assert.equal(sink.completed, true);
  assert.equal(sink.bodyBytes(), body.length);
});

test("plain socket writes large body whole", () => {
  const sink = new StalledSink(false);
  const response = new Http1Response(sink);
  response.send(200, ["content-length", String(BODY.length)], BODY);
  // One write of the whole body, which the socket sends from the body's own memory.
  assert.equal(sink.writes.length, 2);
  assert.equal(sink.bodyBytes(), BODY.length);
  assert.equal(sink.watched, 1, "the idle timeout watches the unsent bytes");
  assert.equal(sink.completed, undefined, "the response holds the body until the socket sent it");
  sink.drain();
  assert.equal(sink.completed, true);
  assert.ok(sink.writes[1]!.equals(BODY));
});

test("plain socket destroyed with a body unsent", () => {
  const sink = new StalledSink(false);
  const response = new Http1Response(sink);
  let recorded = -1;
  response.onDone((bytes) => (recorded = bytes));
  response.send(200, ["content-length", String(BODY.length)], BODY);
  const headBytes = sink.writes[0]!.length;
  sink.unsent = 3 * 1024 * 1024;
  sink.destroy();
  assert.equal(sink.completed, false);
  // The access log counts what the viewer took, not what was written.
  assert.equal(recorded, headBytes + BODY.length - 3 * 1024 * 1024);
});
