/**
 * Opens a metrics store and prunes it to a byte budget in passes of one
 * batch, writing `pass <n>` to standard output after each, so that a test
 * can kill it in the middle of pruning.
 *
 * Usage: node --import tsx test/metrics/prune-child.ts <dataDir> <nowMs> <budgetBytes>
 */
import { writeSync } from "node:fs";
import { silentLogger } from "../../src/common/logger.js";
import { MetricsStore } from "../../src/metrics/store.js";

const [dataDir, nowText, budgetText] = process.argv.slice(2);
const nowMs = Number(nowText);
const store = new MetricsStore(dataDir!, { log: silentLogger(), maxCustomSeries: 10, diskBudgetBytes: Number(budgetText), maxPassMs: 0, now: () => nowMs });
for (let pass = 1; ; pass++) {
  const result = store.enforceDiskBudget(nowMs);
  // writeSync: the line must be out before the next pass blocks the event loop.
  writeSync(1, `pass ${pass}\n`);
  if (result.complete && store.diskStats().usedBytes <= Number(budgetText)) break;
}
writeSync(1, "done\n");
store.close();
