// Starts one edge process in front of the benchmark origin, without the API, for measuring the
// hit path alone. SINK=null drops request records; SINK=metrics feeds them to the CloudWatch
// metrics aggregator, as `portico up` does. Prints the domain name once the distribution is
// applied, and stops on SIGTERM.
//   npm run build && SINK=metrics PORT=8096 ORIGIN_PORT=9000 npx tsx bench/edge/hit-server.ts
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MetricsSink } from "../../src/metrics/types.js";

// The built code (`npm run build`), as `portico up` runs it. Under tsx, esbuild defines the class
// fields of every class with a TypeScript parameter property through Object.defineProperty,
// which took close to a tenth of the hit path's CPU time in a profile.
const dist = new URL("../../dist/", import.meta.url);
const { createLogger } = (await import(new URL("common/logger.js", dist).href)) as typeof import("../../src/common/logger.js");
const { EmbeddedBus } = (await import(new URL("cluster/embedded.js", dist).href)) as typeof import("../../src/cluster/embedded.js");
const { startEdge } = (await import(new URL("edge/index.js", dist).href)) as typeof import("../../src/edge/index.js");
const { createMetrics } = (await import(new URL("metrics/index.js", dist).href)) as typeof import("../../src/metrics/index.js");

const sinkKind = process.env.SINK ?? "metrics";
const port = Number(process.env.PORT ?? 8096);
const originPort = Number(process.env.ORIGIN_PORT ?? 9000);
const log = createLogger("warn");
const dataDir = await mkdtemp(join(tmpdir(), "portico-hit-server-"));
const metrics = sinkKind === "metrics" ? await createMetrics({ dataDir, log }) : undefined;
const sink: MetricsSink = metrics?.sink ?? { record: () => {} };
const bus = new EmbeddedBus(log);
const edge = await startEdge({
  edgeId: "bench-edge",
  dataDir,
  zone: "portico.localhost",
  host: "127.0.0.1",
  httpPort: port,
  httpsPort: 0,
  bus,
  metrics: sink,
  s3Endpoint: "http://127.0.0.1:1",
  serviceCredentials: { accessKeyId: "ASIABENCHSERVICEKEY1", secretAccessKey: "bench-only-service-secret-000000000000" },
  memoryCacheBytes: 256 * 1024 * 1024,
  log,
});
const id = "EBENCHHITSERVER";
const domainName = "dbenchhitserver.portico.localhost";
const applied = new Promise<void>((resolve) => bus.onAck(() => resolve()));
await bus.publish({
  type: "distribution.updated",
  snapshot: {
    id,
    arn: `arn:aws:cloudfront::000000000000:distribution/${id}`,
    domainName,
    version: 1,
    originAccessControls: {},
    config: {
      CallerReference: "bench",
      Comment: "",
      Enabled: true,
      Origins: {
        Quantity: 1,
        Items: [
          {
            Id: "bench-origin",
            DomainName: "127.0.0.1",
            CustomOriginConfig: { HTTPPort: originPort, HTTPSPort: 443, OriginProtocolPolicy: "http-only" },
          },
        ],
      },
      DefaultCacheBehavior: {
        TargetOriginId: "bench-origin",
        ViewerProtocolPolicy: "allow-all",
        MinTTL: 0,
        DefaultTTL: 86400,
        MaxTTL: 31536000,
        ForwardedValues: { QueryString: false, Cookies: { Forward: "none" } },
      },
    },
  },
});
await applied;
process.stdout.write(`${domainName}\n`);
process.once("SIGTERM", () => {
  void (async () => {
    await edge.close();
    await metrics?.close();
    await rm(dataDir, { recursive: true, force: true });
    process.exit(0);
  })();
});
