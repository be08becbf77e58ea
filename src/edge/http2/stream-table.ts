import type { Http2Stream } from "./stream.js";

/**
 * The open streams of one connection, by id. Most connections have one stream
 * open at a time, and this table keeps it in a field of its own. A Map that
 * gains and loses one entry per request reallocates its hash table on every
 * delete, because V8 shrinks a Map that falls below a quarter of its capacity.
 */
export class StreamTable {
  private sole: Http2Stream | undefined;
  private readonly many = new Map<number, Http2Stream>();

  get size(): number {
    return this.sole !== undefined ? 1 : this.many.size;
  }

  get(id: number): Http2Stream | undefined {
    const sole = this.sole;
    if (sole !== undefined) return sole.id === id ? sole : undefined;
    return this.many.size === 0 ? undefined : this.many.get(id);
  }

  /** Adds a stream whose id is not in the table. */
  add(stream: Http2Stream): void {
    if (this.sole === undefined && this.many.size === 0) {
      this.sole = stream;
      return;
    }
    if (this.sole !== undefined) {
      this.many.set(this.sole.id, this.sole);
      this.sole = undefined;
    }
    this.many.set(stream.id, stream);
  }

  delete(id: number): void {
    if (this.sole !== undefined) {
      if (this.sole.id === id) this.sole = undefined;
      return;
    }
    this.many.delete(id);
  }

  /** Returns a copy of the open streams, so callers may close streams while they go through them. */
  list(): Http2Stream[] {
    if (this.sole !== undefined) return [this.sole];
    return [...this.many.values()];
  }
}
