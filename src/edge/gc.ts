import { setFlagsFromString } from "node:v8";

/**
 * Makes V8 collect the young generation on the event loop's thread alone.
 *
 * By default a scavenge splits its work over helper threads and waits for them. The edge runs one
 * worker per core, so on a busy machine those threads wait for a core, and every request on the
 * worker waits with them. With 2 workers on 2 busy cores serving 1 KiB hits, scavenges took 0.38
 * to 0.57 ms at the median and 1.6 to 2.4 ms at the 90th percentile. On the event loop's thread
 * alone they took 0.14 to 0.20 ms and 0.26 ms, at the same request rate. Marking old objects stays
 * concurrent, because it runs seldom and an atomic pause there would be longer.
 *
 * V8 reads these flags when a collection starts, so setting them after startup takes effect
 * (`--trace-gc-nvp` shows no background scavenge time afterwards).
 */
export function scavengeOnEventLoopThread(): void {
  setFlagsFromString("--no-parallel-scavenge");
  // Freeing the memory of dead buffers, which a scavenge also starts, stays on this thread too.
  setFlagsFromString("--no-concurrent-array-buffer-sweeping");
}
