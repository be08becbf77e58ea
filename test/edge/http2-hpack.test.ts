import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { connect as connectHttp2, type ClientHttp2Session, type IncomingHttpHeaders } from "node:http2";
import { test, type TestContext } from "node:test";
import { promisify } from "node:util";
import { HpackDecoder, type HeaderField } from "../../src/edge/http2/hpack.js";
import { HpackEncoder, type ResponseHead } from "../../src/edge/http2/hpack-encoder.js";
import { startEdgeForOrigin, startOrigin } from "./helpers.js";
import { validTableField } from "../../src/edge/http2/request.js";
import { RawHttp2Client, T, F, frame, headerBlock, literal, requestFields } from "./http2-raw.js";

const run = promisify(execFile);

/** Returns the fields of a head as name and value pairs: `:status`, the fields, then the request id. */
function pairs(head: ResponseHead): HeaderField[] {
  const out: HeaderField[] = [[":status", String(head.status)]];
  for (let i = 0; i < head.fields.length; i += 2) out.push([head.fields[i]!, head.fields[i + 1]!]);
  if (head.requestId !== undefined) out.push(["x-amz-cf-id", head.requestId]);
  return out;
}

function decodeEncoded(decoder: HpackDecoder, encoded: { block: Buffer; tail: Buffer | undefined }): HeaderField[] {
  return decoder.decode(encoded.tail === undefined ? encoded.block : Buffer.concat([encoded.block, encoded.tail]), 1 << 20);
}

const HIT_FIELDS = [
  "server", "nginx", "content-type", "text/plain", "etag", '"abc"', "cache-control", "max-age=60",
  "x-cache", "Hit from portico", "via", "1.1 edge.portico (Portico)", "age", "3", "cache-status", "portico; hit; ttl=57",
];

test("HPACK decoder marks checked table fields", () => {
  const decoder = new HpackDecoder(4096, validTableField);
  const indexing = (name: string, value: string): Buffer => Buffer.concat([Buffer.from([0x40]), literal(name), literal(value)]);
  // :method GET (static 2), then two literals that enter the table: a valid one and one with a
  // line feed in its value.
  decoder.decode(Buffer.concat([Buffer.from([0x82]), indexing("x-ok", "1"), indexing("x-bad", "a\nb")]), 1 << 20);
  assert.equal(decoder.validBits, 0b001);
  // Static 2, x-bad (62, the newest), x-ok (63), then a literal without indexing.
  const fields = decoder.decode(Buffer.concat([Buffer.from([0x82, 0x80 | 62, 0x80 | 63, 0x00]), literal("x-new"), literal("2")]), 1 << 20);
  assert.deepEqual(fields, [[":method", "GET"], ["x-bad", "a\nb"], ["x-ok", "1"], ["x-new", "2"]]);
  assert.equal(decoder.validBits, 0b0101);
});

test("HPACK encoder indexes repeated fields", () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder(4096);
  const first: ResponseHead = { status: 200, fields: HIT_FIELDS, reuseKey: {}, requestId: "A".repeat(32) };
  const encodedFirst = encoder.encode(first);
  assert.deepEqual(decodeEncoded(decoder, encodedFirst), pairs(first));

  // The same fields with a new age and request id: every other field is one byte now.
  const fields = HIT_FIELDS.slice();
  fields[13] = "4";
  const second: ResponseHead = { status: 200, fields, requestId: "B".repeat(32) };
  const encodedSecond = encoder.encode(second);
  assert.deepEqual(decodeEncoded(decoder, encodedSecond), pairs(second));
  assert.ok(encodedFirst.block.length > 100, `first block ${encodedFirst.block.length} octets`);
  // :status 200 and six indexed fields, age as a literal of 4 octets (a 2-octet name index, the
  // length and the digit), and cache-status, unchanged, indexed.
  assert.equal(encodedSecond.block.length, 1 + 6 + 4 + 1);
  // The request id names its field by index: 2 octets, then the length and the 32 characters.
  assert.equal(encodedSecond.tail!.length, 2 + 1 + 32);
  // `age` never enters the table. `cache-status` and `x-amz-cf-id` enter it once, for their names.
  assert.equal(encoder.entryCount, 8);
});

test("HPACK encoder reuses unchanged blocks", () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder(4096);
  const key = {};
  const head: ResponseHead = { status: 200, fields: HIT_FIELDS, reuseKey: key, requestId: "C".repeat(32) };
  const initial = encoder.encode(head);
  decodeEncoded(decoder, initial);
  const repeated = encoder.encode(head);
  assert.deepEqual(decodeEncoded(decoder, repeated), pairs(head));
  // The first block inserted the fields, and then the request id field changed the table. So the
  // second block was encoded again, with indexes, and the third reuses it.
  assert.notEqual(repeated.block, initial.block);
  const reused = encoder.encode({ ...head, requestId: "D".repeat(32) });
  assert.equal(reused.block, repeated.block);
  assert.deepEqual(decodeEncoded(decoder, reused), pairs({ ...head, requestId: "D".repeat(32) }));
  // Another head inserts a field, which moves every index: the reused block must not come back.
  const other: ResponseHead = { status: 404, fields: ["x-other", "1"] };
  decodeEncoded(decoder, encoder.encode(other));
  const afterInsert = encoder.encode(head);
  assert.notEqual(afterInsert.block, repeated.block);
  assert.deepEqual(decodeEncoded(decoder, afterInsert), pairs(head));
});

test("HPACK encoder announces table size changes", () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder(4096);
  decodeEncoded(decoder, encoder.encode({ status: 200, fields: HIT_FIELDS }));
  encoder.setPeerLimit(0);
  encoder.setPeerLimit(100);
  const encoded = encoder.encode({ status: 200, fields: HIT_FIELDS });
  // Size update to 0 (the lowest since the last block), then to 100 (RFC 7541 section 4.2).
  assert.deepEqual([...encoded.block.subarray(0, 3)], [0x20, 0x3f, 100 - 31]);
  assert.deepEqual(decodeEncoded(decoder, encoded), pairs({ status: 200, fields: HIT_FIELDS }));
  // A limit of 0 leaves nothing in the table, and later blocks still decode.
  encoder.setPeerLimit(0);
  const empty = encoder.encode({ status: 200, fields: HIT_FIELDS });
  assert.equal(empty.block[0], 0x20);
  assert.equal(encoder.entryCount, 0);
  assert.deepEqual(decodeEncoded(decoder, empty), pairs({ status: 200, fields: HIT_FIELDS }));
  // A limit above 4096 raises the table to the encoder's own 4096, announced once.
  encoder.setPeerLimit(65_536);
  const raised = encoder.encode({ status: 200, fields: HIT_FIELDS });
  assert.deepEqual([...raised.block.subarray(0, 3)], [0x3f, 0xe1, 0x1f]);
  decodeEncoded(decoder, raised);
  const after = encoder.encode({ status: 200, fields: HIT_FIELDS });
  assert.notEqual(after.block[0]! & 0xe0, 0x20);
  assert.deepEqual(decodeEncoded(decoder, after), pairs({ status: 200, fields: HIT_FIELDS }));

  // A block that carried an update is not reused, so the update is sent once.
  const key = {};
  encoder.setPeerLimit(0);
  const announcing = encoder.encode({ status: 200, fields: HIT_FIELDS, reuseKey: key });
  assert.equal(announcing.block[0], 0x20);
  decodeEncoded(decoder, announcing);
  const next = encoder.encode({ status: 200, fields: HIT_FIELDS, reuseKey: key });
  assert.notEqual(next.block[0]! & 0xe0, 0x20);
  assert.deepEqual(decodeEncoded(decoder, next), pairs({ status: 200, fields: HIT_FIELDS }));
});

test("HPACK encoder never indexes set-cookie", () => {
  const encoder = new HpackEncoder();
  const encoded = encoder.encode({ status: 200, fields: ["set-cookie", "session=secret"] });
  // :status 200 is static index 8. set-cookie is static name 55, sent as never indexed (0x10, 4-bit prefix).
  assert.deepEqual([...encoded.block.subarray(0, 3)], [0x88, 0x1f, 55 - 15]);
  assert.equal(encoder.entryCount, 0);
});

test("HPACK encoder tracks evictions", () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder(4096);
  // A deterministic sequence: fields from a pool larger than the table, some values near half
  // the table, and table size changes now and then.
  let seed = 7;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pool = Array.from({ length: 80 }, (_, i) => [`x-field-${i % 20}`, `value-${i}-${"v".repeat(random(3) === 0 ? 1900 : random(200))}`] as const);
  const keys = Array.from({ length: 5 }, () => ({}));
  const headsByKey = new Map<object, ResponseHead>();
  for (let round = 0; round < 3000; round++) {
    if (random(50) === 0) encoder.setPeerLimit([0, 64, 512, 4096, 8192][random(5)]!);
    let head: ResponseHead;
    if (random(3) === 0) {
      const key = keys[random(keys.length)]!;
      head = headsByKey.get(key) ?? { status: 200, fields: pool.slice(random(70), 75).flat(), reuseKey: key };
      headsByKey.set(key, head);
    } else {
      const fields = Array.from({ length: 1 + random(8) }, () => pool[random(pool.length)]!).flat();
      head = { status: [200, 206, 304, 403, 503][random(5)]!, fields };
      if (random(2) === 0) head.requestId = `id-${round}`;
    }
    assert.deepEqual(decodeEncoded(decoder, encoder.encode(head)), pairs(head), `round ${round}`);
  }
});

async function setup(t: TestContext) {
  // Each path responds with headers of its own, one of them long, so that a session that fetches
  // many paths fills the table and evicts.
  const origin = await startOrigin((req, res) => {
    const path = req.url ?? "/";
    res.writeHead(200, {
      "cache-control": "max-age=60",
      "content-type": "text/plain",
      "x-path": path,
      "x-long": `${path}:${"l".repeat(1500)}`,
    });
    res.end(`body of ${path}`);
  });
  return startEdgeForOrigin(t, origin);
}

function get(session: ClientHttp2Session, host: string, path: string): Promise<{ headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":path": path, ":authority": host });
    let headers: IncomingHttpHeaders = {};
    let body = "";
    stream.setEncoding("utf8");
    stream.on("response", (received) => (headers = received));
    stream.on("data", (chunk: string) => (body += chunk));
    stream.on("end", () => resolve({ headers, body }));
    stream.on("error", reject);
  });
}

function checkResponse(response: { headers: IncomingHttpHeaders; body: string }, path: string): void {
  assert.equal(response.headers[":status"], 200, path);
  assert.equal(response.headers["x-path"], path);
  assert.equal(response.headers["x-long"], `${path}:${"l".repeat(1500)}`);
  assert.equal(response.headers["content-type"], "text/plain");
  assert.match(String(response.headers["x-amz-cf-id"]), /^[0-9A-F]{32}$/);
  assert.equal(response.body, `body of ${path}`);
}

test("HTTP/2 heads decode in node's client", async (t) => {
  const { ca, port, host } = await setup(t);
  const session = connectHttp2(`https://127.0.0.1:${port}`, { ca, servername: host });
  t.after(() => session.close());
  // Three rounds of 12 paths: misses first, then hits. Each long field takes 1.5 KB of the 4 KB
  // table, so the table keeps evicting.
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 12; i++) checkResponse(await get(session, host, `/p${i}`), `/p${i}`);
  }
  // Concurrent streams: blocks leave in the order they were encoded, whatever order they finish in.
  const paths = Array.from({ length: 40 }, (_, i) => `/p${i % 15}`);
  const responses = await Promise.all(paths.map((path) => get(session, host, path)));
  responses.forEach((response, i) => checkResponse(response, paths[i]!));
});

test("HTTP/2 follows client header table sizes", async (t) => {
  const { ca, port, host } = await setup(t);
  const session = connectHttp2(`https://127.0.0.1:${port}`, { ca, servername: host, settings: { headerTableSize: 0 } });
  t.after(() => session.close());
  for (let i = 0; i < 4; i++) checkResponse(await get(session, host, `/t${i % 2}`), `/t${i % 2}`);
  await new Promise<void>((resolve) => session.settings({ headerTableSize: 256 }, () => resolve()));
  for (let i = 0; i < 4; i++) checkResponse(await get(session, host, `/t${i % 2}`), `/t${i % 2}`);
  await new Promise<void>((resolve) => session.settings({ headerTableSize: 8192 }, () => resolve()));
  for (let i = 0; i < 4; i++) checkResponse(await get(session, host, `/t${i % 2}`), `/t${i % 2}`);
  await new Promise<void>((resolve) => session.settings({ headerTableSize: 0 }, () => resolve()));
  for (let i = 0; i < 4; i++) checkResponse(await get(session, host, `/t${i % 2}`), `/t${i % 2}`);
});

test("HTTP/2 repeated hits shrink headers", async (t) => {
  const { ca, port, host } = await setup(t);
  const client = await RawHttp2Client.connect(port, host, ca);
  t.after(() => client.close());
  const streams = [1, 3, 5];
  for (const id of streams) {
    client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, headerBlock(requestFields(host, "/small"))));
    assert.ok(await client.waitFor((f) => f.type === T.DATA && f.streamId === id && (f.flags & F.END_STREAM) !== 0), `stream ${id}`);
  }
  const sizes = streams.map((id) => client.frames.find((f) => f.type === T.HEADERS && f.streamId === id)!.payload.length);
  for (const id of streams) {
    const fields = new Map(client.responseFields(id));
    assert.equal(fields.get(":status"), "200");
    assert.equal(fields.get("x-path"), "/small");
  }
  // The first response is a miss with every field as a literal. The third is a hit whose fields
  // were all sent before, so only the age, the cache-status and the request id are literals.
  assert.ok(sizes[0]! > 1500, `sizes ${sizes.join(", ")}`);
  assert.ok(sizes[2]! < 90, `sizes ${sizes.join(", ")}`);
});

test("HTTP/2 heads decode in curl, h2load", async (t) => {
  const { fixture, port, host } = await setup(t);
  const caPath = fixture.edge.caCertificatePath;
  const urls = Array.from({ length: 8 }, (_, i) => `https://${host}:${port}/c${i % 4}`);
  const curl = await run("curl", [
    "-s", "--http2", "--cacert", caPath, "--resolve", `${host}:${port}:127.0.0.1`,
    "-w", "%{http_version} %header{x-path} %header{x-cache}\\n", ...urls.flatMap((url) => ["-o", "/dev/null", url]),
  ]);
  assert.deepEqual(curl.stdout.trim().split("\n"), [
    "2 /c0 Miss from portico", "2 /c1 Miss from portico", "2 /c2 Miss from portico", "2 /c3 Miss from portico",
    "2 /c0 Hit from portico", "2 /c1 Hit from portico", "2 /c2 Hit from portico", "2 /c3 Hit from portico",
  ]);
  let h2load;
  try {
    h2load = await run("h2load", ["-n", "200", "-c", "2", "-m", "10", `--connect-to=127.0.0.1:${port}`, `https://${host}/c1`, `https://${host}/c2`]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    t.diagnostic("h2load is not installed (Debian nghttp2-client)");
    return;
  }
  assert.match(h2load.stdout, /requests: 200 total, 200 started, 200 done, 200 succeeded, 0 failed/);
});
