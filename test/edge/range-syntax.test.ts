import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { parseRangeHeader, resolveRange, resolveRanges } from "../../src/edge/range.js";
import { sliceableRange } from "../../src/edge/slice-flow.js";
import { customSnapshot, request, startOrigin, startTestEdge } from "./helpers.js";

/** Range headers that RFC 9110 section 14.1.1 allows, with the ranges they select of 100 bytes. */
const VALID: Array<[string, Array<{ start: number; end: number }>]> = [
  ["bytes=0-1", [{ start: 0, end: 1 }]],
  ["BYTES=0-1", [{ start: 0, end: 1 }]],
  ["Bytes=0-1", [{ start: 0, end: 1 }]],
  ["bytes=007-010", [{ start: 7, end: 10 }]],
  ["bytes=0000000000000000000000001-2", [{ start: 1, end: 2 }]],
  ["bytes=90-", [{ start: 90, end: 99 }]],
  ["bytes=-5", [{ start: 95, end: 99 }]],
  ["bytes=-005", [{ start: 95, end: 99 }]],
  ["bytes=0-1,4-5", [{ start: 0, end: 1 }, { start: 4, end: 5 }]],
  ["bytes=0-1 , 4-5", [{ start: 0, end: 1 }, { start: 4, end: 5 }]],
  ["bytes=0-1\t,\t4-5", [{ start: 0, end: 1 }, { start: 4, end: 5 }]],
  ["bytes=0-1,,4-5", [{ start: 0, end: 1 }, { start: 4, end: 5 }]],
  ["bytes=,0-1", [{ start: 0, end: 1 }]],
  ["bytes=, 0-1", [{ start: 0, end: 1 }]],
  ["bytes=0-1,", [{ start: 0, end: 1 }]],
  ["bytes=0-1, ,", [{ start: 0, end: 1 }]],
];

/** Range headers outside the grammar, which the edge ignores. */
const INVALID = [
  "bytes = 0-1",
  "bytes =0-1",
  "bytes= 0-1",
  "bytes\t=0-1",
  "bytes=0 -1",
  "bytes=0- 1",
  "bytes=0 - 1",
  "bytes=- 5",
  "bytes=",
  "bytes=,",
  "bytes=, ,",
  "bytes=-",
  "bytes=--1",
  "bytes=1--2",
  "bytes=5-2",
  "bytes=0-1,5-2",
  "bytes=+1-2",
  "bytes=0x1-2",
  "bytes=1.5-2",
  "bytes=0-1;",
  "bytes=0-1,abc",
  "bytes:0-1",
  "bytes0-1",
  "byte=0-1",
  "items=0-1",
  "=0-1",
];

test("range grammar accepts valid forms", () => {
  for (const [header, expected] of VALID) {
    assert.notEqual(parseRangeHeader(header), undefined, header);
    assert.deepEqual(resolveRanges(header, 100), { kind: "partial", ranges: expected }, header);
    if (expected.length === 1) {
      assert.deepEqual(resolveRange(header, 100), { kind: "partial", ...expected[0]! }, header);
      assert.notEqual(sliceableRange(header), undefined, header);
    }
  }
  // `-0` is valid syntax that selects no byte (RFC 9110 section 14.1.1).
  assert.deepEqual(parseRangeHeader("bytes=-0"), [{ kind: "suffix", length: 0 }]);
  assert.deepEqual(resolveRange("bytes=-0", 100), { kind: "unsatisfiable" });
  assert.deepEqual(resolveRanges("bytes=-0", 100), { kind: "unsatisfiable" });
  assert.deepEqual(resolveRanges("bytes=-0,0-1", 100), { kind: "partial", ranges: [{ start: 0, end: 1 }] });
  assert.equal(sliceableRange("bytes=-0"), undefined);
});

test("range grammar ignores invalid forms", () => {
  for (const header of INVALID) {
    assert.equal(parseRangeHeader(header), undefined, header);
    assert.deepEqual(resolveRanges(header, 100), { kind: "full" }, header);
    assert.deepEqual(resolveRange(header, 100), { kind: "full" }, header);
    assert.equal(sliceableRange(header), undefined, header);
  }
});

const BODY = Buffer.from(Array.from({ length: 100 }, (_, i) => String.fromCharCode(0x41 + (i % 26))).join(""));

async function setup(t: TestContext) {
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=600", "content-type": "text/plain", "content-length": String(BODY.length) });
    res.end(BODY);
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge();
  t.after(() => fixture.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const get = (path: string, range: string) => request(fixture.edge.httpPort, snapshot.domainName, path, { headers: { range } });
  return { origin, get };
}

test("range syntax through the edge", async (t) => {
  const { origin, get } = await setup(t);
  const miss = await get("/spaced.txt", "bytes = 0-1");
  assert.equal(miss.status, 200);
  assert.equal(miss.headers["content-range"], undefined);
  assert.deepEqual(miss.body, BODY);
  assert.equal(miss.headers["x-cache"], "Miss from portico");

  const hit = await get("/spaced.txt", "bytes = 0-1");
  assert.equal(hit.status, 200);
  assert.equal(hit.headers["content-range"], undefined);
  assert.deepEqual(hit.body, BODY);
  assert.equal(hit.headers["x-cache"], "Hit from portico");

  const inner = await get("/spaced.txt", "bytes=0 - 1");
  assert.equal(inner.status, 200);
  assert.deepEqual(inner.body, BODY);
  assert.equal(origin.hits("/spaced.txt"), 1);

  const upper = await get("/forms.txt", "BYTES=0-1");
  assert.equal(upper.status, 206);
  assert.equal(upper.headers["content-range"], "bytes 0-1/100");
  assert.deepEqual(upper.body, BODY.subarray(0, 2));

  const zeros = await get("/forms.txt", "bytes=007-010");
  assert.equal(zeros.status, 206);
  assert.equal(zeros.headers["content-range"], "bytes 7-10/100");
  assert.deepEqual(zeros.body, BODY.subarray(7, 11));

  const emptyElements = await get("/forms.txt", "bytes=0-1,, 4-5");
  assert.equal(emptyElements.status, 206);
  assert.match(String(emptyElements.headers["content-type"]), /^multipart\/byteranges; boundary=/);
  assert.match(emptyElements.body.toString("latin1"), /content-range: bytes 0-1\/100\r\n\r\nAB\r\n/);
  assert.match(emptyElements.body.toString("latin1"), /content-range: bytes 4-5\/100\r\n\r\nEF\r\n/);

  const zeroSuffix = await get("/forms.txt", "bytes=-0");
  assert.equal(zeroSuffix.status, 416);
  assert.equal(zeroSuffix.headers["content-range"], "bytes */100");
  assert.equal(origin.hits("/forms.txt"), 1);
});
