import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_HTTP1_LIMITS, HeadError, parseRequestHead, type Http1Limits, type ParseResult } from "../../src/edge/http1/parser.js";

const SMALL_LIMITS: Http1Limits = { maxRequestLineBytes: 64, maxHeadBytes: 256, maxHeaderCount: 6 };

function parse(text: string, limits: Http1Limits = DEFAULT_HTTP1_LIMITS): ParseResult | { status: number } {
  try {
    return parseRequestHead(Buffer.from(text, "latin1"), 0, limits);
  } catch (error) {
    if (!(error instanceof HeadError)) throw error;
    return { status: error.status };
  }
}

test("parses a browser-like head", () => {
  const head =
    "GET /a/b?c=d HTTP/1.1\r\nHost: D.Example\r\nUSER-AGENT: test/1.0 \r\nAccept-Encoding:gzip, br\r\n" +
    "Cookie: a=1\r\ncookie: b=2\r\nX-Custom-Name: \tvalue with  spaces\t\r\nSet-Cookie: s=1\r\n\r\n";
  const result = parse(head);
  assert.notEqual(result, "incomplete");
  assert.ok(!("status" in (result as object)));
  const parsed = result as Exclude<ParseResult, "incomplete">;
  assert.equal(parsed.method, "GET");
  assert.equal(parsed.target, "/a/b?c=d");
  assert.equal(parsed.minorVersion, 1);
  assert.equal(parsed.headBytes, Buffer.byteLength(head, "latin1"));
  assert.deepEqual(parsed.headers, {
    host: "D.Example",
    "user-agent": "test/1.0",
    "accept-encoding": "gzip, br",
    cookie: "a=1; b=2",
    "x-custom-name": "value with  spaces",
    "set-cookie": ["s=1"],
  });
  assert.deepEqual(parsed.framing, { kind: "none" });
  assert.equal(parsed.keepAlive, true);
});

test("parses framing and connection fields", () => {
  const chunked = parse("POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n");
  assert.deepEqual((chunked as Exclude<ParseResult, "incomplete">).framing, { kind: "chunked" });
  assert.equal((chunked as Exclude<ParseResult, "incomplete">).keepAlive, false);
  const length = parse("PUT /u HTTP/1.0\r\nContent-Length: 12\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n");
  const parsed = length as Exclude<ParseResult, "incomplete">;
  assert.deepEqual(parsed.framing, { kind: "length", bytes: 12 });
  assert.equal(parsed.keepAlive, true);
  assert.equal(parsed.expectContinue, false);
  assert.equal(parsed.method, "PUT");
});

const rejected: Array<[string, string, number, Http1Limits?]> = [
  ["lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400],
  ["HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505],
  ["HTTP/1.2 request line", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505],
  ["three-digit version", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400],
  ["short version", "GET / HTTP/1.\r\nHost: h\r\n\r\n", 400],
  ["bare LF after request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400],
  ["bare CR after request line", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400],
  ["bare LF after a field", "GET / HTTP/1.1\r\nHost: h\n\r\n", 400],
  ["bare CR inside a value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400],
  ["tab as separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["empty method", " / HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["empty target", "GET  HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ["space in name", "GET / HTTP/1.1\r\nHost: h\r\nX Y: 1\r\n\r\n", 400],
  ["empty name", "GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", 400],
  ["name without colon", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400],
  ["obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400],
  ["NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400],
  ["repeated Host in other case", "GET / HTTP/1.1\r\nHost: h\r\nHOST: i\r\n\r\n", 400],
  ["repeated Content-Length", "POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 1\r\nContent-Length: 1\r\n\r\n", 400],
  ["too many fields", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\n\r\n", 431, SMALL_LIMITS],
  ["long request line", `GET /${"x".repeat(100)} HTTP/1.1\r\nHost: h\r\n\r\n`, 414, SMALL_LIMITS],
  ["long header section", `GET / HTTP/1.1\r\nHost: h\r\nX: ${"y".repeat(300)}\r\n\r\n`, 431, SMALL_LIMITS],
];

for (const [name, head, status, limits] of rejected) {
  test(`parser rejects ${name}`, () => {
    assert.deepEqual(parse(head, limits), { status });
  });
}

test("long line waits below the limit", () => {
  assert.equal(parse(`GET /${"x".repeat(40)}`, SMALL_LIMITS), "incomplete");
  assert.deepEqual(parse(`GET /${"x".repeat(80)}`, SMALL_LIMITS), { status: 414 });
});

/** Generates valid heads together with the fields they must parse to. */
function* generatedHeads(count: number): Generator<{ text: string; headers: Record<string, string>; method: string; target: string }> {
  let seed = 20261204;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const names = ["Host", "accept", "X-Trace", "If-None-Match", "Accept-Language", "x-a1", "Sec-Fetch-Mode", "TE"];
  const valueBytes = "abcXYZ019 ,;=\t\"/é\xff";
  for (let i = 0; i < count; i++) {
    const method = ["GET", "HEAD", "OPTIONS", "PATCH"][next(4)]!;
    const target = `/${"abc/%2F?=&".slice(0, next(11))}`;
    let text = `${method} ${target} HTTP/1.1\r\n`;
    const headers: Record<string, string> = {};
    const used = new Set<string>();
    const fieldCount = 1 + next(6);
    for (let f = 0; f < fieldCount; f++) {
      const name = f === 0 ? "Host" : names[next(names.length)]!;
      const lower = name.toLowerCase();
      if (used.has(lower)) continue;
      used.add(lower);
      let value = "";
      for (let v = next(12); v > 0; v--) value += valueBytes[next(valueBytes.length)];
      const trimmed = value.replace(/^[ \t]+|[ \t]+$/g, "");
      headers[lower] = trimmed;
      text += `${next(2) === 0 ? name : name.toUpperCase()}:${" ".repeat(next(3))}${value}\r\n`;
    }
    yield { text: `${text}\r\n`, headers, method, target };
  }
}

test("generated heads parse as built", () => {
  for (const head of generatedHeads(2000)) {
    const result = parse(head.text);
    assert.notEqual(result, "incomplete", head.text);
    const parsed = result as Exclude<ParseResult, "incomplete">;
    assert.equal(parsed.method, head.method);
    assert.equal(parsed.target, head.target);
    assert.deepEqual({ ...parsed.headers }, head.headers, JSON.stringify(head.text));
    assert.equal(parsed.headBytes, Buffer.byteLength(head.text, "latin1"));
  }
});

test("every prefix of a head is incomplete", () => {
  for (const head of generatedHeads(200)) {
    const bytes = Buffer.from(head.text, "latin1");
    for (let length = 0; length < bytes.length; length++) {
      assert.equal(parseRequestHead(bytes.subarray(0, length), 0, DEFAULT_HTTP1_LIMITS), "incomplete", JSON.stringify(head.text.slice(0, length)));
    }
  }
});
