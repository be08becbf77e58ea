// Prints the functions with the most self time in a V8 .cpuprofile, and the share of
// samples under a few groups of the edge's hit path.
//   node bench/edge/profile-summary.mjs FILE.cpuprofile [TOP]
import { readFileSync } from "node:fs";

const [file, topArg] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, "utf8"));
const top = Number(topArg ?? 25);
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfSamples = new Map();
for (const id of profile.samples) selfSamples.set(id, (selfSamples.get(id) ?? 0) + 1);

const totals = new Map();
let all = 0;
for (const [id, count] of selfSamples) {
  const frame = byId.get(id).callFrame;
  const where = frame.url === "" ? "" : `${frame.url.replace(/^.*\/(dist|node_modules)\//, "$1/")}:${frame.lineNumber + 1}`;
  const key = `${frame.functionName || "(anonymous)"} ${where}`;
  totals.set(key, (totals.get(key) ?? 0) + count);
  all += count;
}
const idle = [...totals].filter(([key]) => key.startsWith("(idle)")).reduce((sum, [, n]) => sum + n, 0);
console.log(`samples: ${all}, idle: ${((idle / all) * 100).toFixed(1)}%`);
for (const [key, count] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${((count / all) * 100).toFixed(1).padStart(5)}%  ${key}`);
}
