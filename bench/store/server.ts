// Serves the S3 API of the embedded bucket store on 127.0.0.1, the same
// ApiServer and S3 service that `portico up` runs, over the data folder given
// as the first argument. Prints `port=<n>` once it listens. Logs at warn level.
import type { ServerResponse } from "node:http";
import { StaticCredentialStore } from "../../src/api/auth/credentials.js";
import type { ApiRequest, ProtocolService } from "../../src/api/context.js";
import { ApiError } from "../../src/api/errors.js";
import { createS3Service } from "../../src/api/s3/index.js";
import { ApiServer } from "../../src/api/server.js";
import { createLogger } from "../../src/common/logger.js";

export const BENCH_CREDENTIALS = {
  accountId: "111122223333",
  root: { accessKeyId: "AKIABENCHROOT000001", secretAccessKey: "benchSecretKeyOnlyForLoopback000000000001" },
  service: { accessKeyId: "ASIABENCHSERVICE001", secretAccessKey: "benchServiceKeyOnlyForLoopback0000000001" },
  rootGenerated: false,
};

const unused: ProtocolService = {
  async handle() {
    throw new ApiError("NotImplemented", 501, "Only the S3 API is served by the benchmark server.");
  },
  renderError(error: ApiError, _request: ApiRequest, response: ServerResponse) {
    response.writeHead(error.status, { "content-type": "text/plain" });
    response.end(`${error.code}\n`);
  },
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const dataDir = process.argv[2];
  if (dataDir === undefined) {
    process.stderr.write("usage: server.ts DATA_DIR\n");
    process.exit(2);
  }
  const log = createLogger("warn");
  const credentials = new StaticCredentialStore(BENCH_CREDENTIALS);
  const s3 = await createS3Service({ dataDir, accountId: BENCH_CREDENTIALS.accountId, credentials, log });
  const server = new ApiServer({ credentials, services: { s3, cloudfront: unused, cloudwatch: unused }, log, health: () => "ok" });
  const address = await server.listen(0, "127.0.0.1");
  process.stdout.write(`port=${address.port}\n`);
  // Exit normally on a signal so that `--cpu-prof` writes its profile.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => process.exit(0));
  }
}
