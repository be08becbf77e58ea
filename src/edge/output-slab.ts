/**
 * Output buffers of small responses, HTTP/1.1 and HTTP/2, cut from shared
 * blocks and reused once their write has completed.
 */

/** Size of the blocks that small responses are cut from. */
const SLAB_BYTES = 1024 * 1024;
let slab = Buffer.allocUnsafe(0);
let slabOffset = 0;

/**
 * Returns `bytes` bytes of a large block, so that a small response
 * allocates no ArrayBuffer of its own. A block is freed by the garbage
 * collector once no write holds a piece of it.
 */
export function takeFromSlab(bytes: number): Buffer {
  if (slabOffset + bytes > slab.length) {
    slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, bytes));
    slabOffset = 0;
  }
  const piece = slab.subarray(slabOffset, slabOffset + bytes);
  // Pieces start on 8-byte boundaries, as Node's own buffer pool does.
  slabOffset = (slabOffset + bytes + 7) & ~7;
  return piece;
}

/**
 * Returns the last piece taken to its block once its write has completed, so
 * the next response reuses the bytes. A write that completed at once has
 * handed them to the kernel. Without this reuse, a worker allocated external
 * memory at the rate it sent bytes, and V8 ran full collections several
 * times a second, each pausing the worker for up to 10 ms.
 */
export function giveBackToSlab(piece: Buffer): void {
  if (piece.buffer !== slab.buffer) return;
  const start = piece.byteOffset - slab.byteOffset;
  if (((start + piece.length + 7) & ~7) === slabOffset) slabOffset = start;
}
