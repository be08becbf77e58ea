import assert from "node:assert/strict";
import { test } from "node:test";
import { StreamTable } from "../../src/edge/http2/stream-table.js";
import type { Http2Stream } from "../../src/edge/http2/stream.js";

function stream(id: number): Http2Stream {
  return { id } as Http2Stream;
}

test("stream table keeps one stream in a field and several in a map", () => {
  const table = new StreamTable();
  assert.equal(table.size, 0);
  assert.equal(table.get(1), undefined);
  const first = stream(1);
  table.add(first);
  assert.equal(table.size, 1);
  assert.equal(table.get(1), first);
  assert.equal(table.get(3), undefined);

  const second = stream(3);
  const third = stream(5);
  table.add(second);
  table.add(third);
  assert.equal(table.size, 3);
  assert.deepEqual(table.list().map((s) => s.id), [1, 3, 5]);
  assert.equal(table.get(3), second);

  // Closing streams while going through the list leaves the list as it was taken.
  for (const open of table.list()) table.delete(open.id);
  assert.equal(table.size, 0);
  assert.deepEqual(table.list(), []);

  // Deleting an id that is not there changes nothing, with one stream or several.
  table.add(stream(7));
  table.delete(9);
  assert.equal(table.size, 1);
  table.add(stream(9));
  table.delete(11);
  assert.equal(table.size, 2);
  table.delete(7);
  assert.equal(table.get(9)?.id, 9);
  assert.equal(table.get(7), undefined);
  table.delete(9);
  assert.equal(table.size, 0);
  table.add(stream(13));
  assert.equal(table.get(13)?.id, 13);
});
