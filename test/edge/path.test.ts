import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizePath } from "../../src/edge/path.js";

const cases: Array<[string, string | undefined]> = [
  ["/", "/"],
  ["/a/b", "/a/b"],
  ["/a/./b", "/a/b"],
  ["/a/../b", "/b"],
  ["/a/b/..", "/a/"],
  ["/a/b/.", "/a/b/"],
  ["/a/%2e%2E/b", "/b"],
  ["/a/.%2e/b", "/b"],
  ["/a/%2e/b", "/a/b"],
  ["/a//../b", "/a/b"],
  ["//a", "//a"],
  ["/a%2Fb", "/a%2Fb"],
  ["/a%2fb", "/a%2Fb"],
  ["/a%2f..%2fb", "/a%2F..%2Fb"],
  ["/%7Euser/%41", "/~user/A"],
  ["/%e2%82%ac", "/%E2%82%AC"],
  ["/a%5cb", "/a%5Cb"],
  ["/..", undefined],
  ["/../a", undefined],
  ["/a/../..", undefined],
  ["/%2e%2e/a", undefined],
  ["/a\\b", undefined],
  ["/a%", undefined],
  ["/a%2", undefined],
  ["/a%g0", undefined],
  ["a/b", undefined],
];

test("normalisation table", () => {
  for (const [input, expected] of cases) {
    const result = normalizePath(input);
    if (expected === undefined) assert.equal(result.ok, false, input);
    else assert.deepEqual(result, { ok: true, path: expected }, input);
  }
});

const SEGMENTS = ["a", "b", ".", "..", "%2e", "%2E%2e", ".%2E", "%2F", "", "%41", "x%2fy", "%7e"];

/** A small deterministic generator, so a failure names a reproducible input. */
function* generatedPaths(count: number): Generator<string> {
  let seed = 12345;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  for (let i = 0; i < count; i++) {
    const length = 1 + (next() % 6);
    const parts: string[] = [];
    for (let j = 0; j < length; j++) parts.push(SEGMENTS[next() % SEGMENTS.length]!);
    yield `/${parts.join("/")}`;
  }
}

test("generated paths keep the invariants", () => {
  let rejected = 0;
  for (const input of generatedPaths(5000)) {
    const result = normalizePath(input);
    if (!result.ok) {
      rejected++;
      continue;
    }
    const segments = result.path.split("/").slice(1);
    assert.ok(result.path.startsWith("/"), input);
    assert.ok(!segments.includes("."), `${input} -> ${result.path}`);
    assert.ok(!segments.includes(".."), `${input} -> ${result.path}`);
    assert.doesNotMatch(result.path, /%2e|%41|%7e/i, `${input} -> ${result.path}`);
    // An encoded slash is never decoded, so the count of %2F survives.
    const slashes = (text: string) => (text.match(/%2f/gi) ?? []).length;
    assert.ok(slashes(result.path) <= slashes(input), `${input} -> ${result.path}`);
    assert.deepEqual(normalizePath(result.path), result, `not idempotent: ${input}`);
  }
  assert.ok(rejected > 0, "some generated paths climb above the root");
  assert.ok(rejected < 5000, "some generated paths are accepted");
});
