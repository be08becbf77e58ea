// Runs the S3 service on 127.0.0.1 over the data folder given as the first
// argument and prints `port=<n>` once it listens. The crash test spawns it and
// kills it with SIGKILL.
import { startStore } from "./harness.js";

const dataDir = process.argv[2];
if (dataDir === undefined) {
  process.stderr.write("usage: crash-server.ts DATA_DIR\n");
  process.exit(2);
}
const store = await startStore(dataDir);
process.stdout.write(`port=${store.port}\n`);
