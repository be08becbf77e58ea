import assert from "node:assert/strict";
import { test } from "node:test";
import { cbor, tag } from "@smithy/core/cbor";
import { CborShapeError, checkCborItems } from "../../src/api/cloudwatch/cbor-guard.js";

test("CBOR guard passes what the SDK serializes", () => {
  const documents = [
    {},
    { Namespace: "Portico/Test", MetricData: [{ MetricName: "Hits", Value: 7.5, Timestamp: tag({ tag: 1, value: 1_700_000_000 }) }] },
    { Values: [1, -2, 3.25, 1e300], Flag: true, Nothing: null, Bytes: new Uint8Array([1, 2, 3]), Text: "é".repeat(300) },
    { Nested: { A: { B: { C: [[[["deep"]]]] } } }, Large: 2 ** 40, Negative: -(2 ** 40) },
  ];
  for (const document of documents) checkCborItems(cbor.serialize(document));
});

test("CBOR guard passes indefinite-length items", () => {
  // {_ "a": [_ 1, 2], "b": (_ "x" "y")}
  checkCborItems(new Uint8Array([0xbf, 0x61, 0x61, 0x9f, 0x01, 0x02, 0xff, 0x61, 0x62, 0x7f, 0x61, 0x78, 0x61, 0x79, 0xff, 0xff]));
});

test("CBOR guard refuses bignums, decimals and bad shapes", () => {
  const cases: Array<[string, number[], RegExp]> = [
    ["positive bignum", [0xa1, 0x61, 0x61, 0xc2, 0x41, 0x01], /unsupported tag 2/],
    ["negative bignum", [0xc3, 0x41, 0x01], /unsupported tag 3/],
    ["decimal fraction", [0xc4, 0x82, 0x01, 0x02], /unsupported tag 4/],
    ["truncated string", [0x65, 0x61], /truncated/],
    ["truncated map", [0xa2, 0x61, 0x61], /truncated/],
    ["stray break", [0xff], /break outside/],
    ["reserved length", [0x1c], /reserved/],
    ["trailing bytes", [0x01, 0x02], /after the top-level item/],
    ["huge declared array", [0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], /truncated container/],
  ];
  for (const [name, bytes, message] of cases) {
    assert.throws(() => checkCborItems(new Uint8Array(bytes)), (error: unknown) => error instanceof CborShapeError && message.test(error.message), name);
  }
  assert.throws(() => checkCborItems(new Uint8Array([...Array(65).fill(0x81), 0x01])), /nested too deep/);
});
