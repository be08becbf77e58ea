#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { Command, Option } from "commander";
import { createLogger } from "../common/logger.js";
import { recordedEndpoint } from "../common/data-dir-lock.js";
import {
  DEFAULTS,
  parseMebibytes,
  parseMetricsDiskBudget,
  parseWorkerCount,
  parsePort,
  parseSeconds,
  parseSeriesLimit,
  parseZone,
  resolveDataDir,
  type PorticoOptions,
} from "../config/options.js";
import { startPortico } from "../portico.js";
import { runStatus } from "./status.js";
import { registerIamCommands } from "./iam-commands.js";

interface UpFlags {
  dataDir: string;
  host: string;
  apiPort: number;
  httpPort: number;
  httpsPort: number;
  zone: string;
  memoryCache: number;
  diskCache: number;
  edgeWorkers: number;
  logLevel: string;
  logInterval: number;
  accessLogDir: string | undefined;
  metricsMaxSeries: number;
  metricsDiskMb: number;
}

const program = new Command();
const packageJson = JSON.parse(
  readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
) as { version: string };

program
  .name("portico")
  .version(packageJson.version, "-V, --version", "print the version and exit")
  .description(
    "Self-hosted content delivery network. Its API endpoint serves the S3, CloudFront and " +
      "CloudWatch protocols, so the AWS CLI and SDKs create buckets, distributions and " +
      "invalidations and read metrics. Its edge serves and caches the distributions' traffic.",
  )
  .showHelpAfterError();

program
  .command("up")
  .description(
    "Start every component in one process with embedded defaults: the API endpoint, one edge " +
      "(HTTP and HTTPS), the bucket store and the metrics store, all keeping state in the data folder.",
  )
  .addOption(
    new Option("--data-dir <path>", "folder that holds all state (credentials, buckets, distributions, metrics, TLS keys)")
      .env("PORTICO_DATA_DIR")
      .default(DEFAULTS.dataDir),
  )
  .addOption(
    new Option("--host <address>", "address every listener binds to").env("PORTICO_HOST").default(DEFAULTS.host),
  )
  .addOption(
    new Option("--api-port <port>", "TCP port of the API endpoint (S3, CloudFront, CloudWatch); 0 picks a free port")
      .env("PORTICO_API_PORT")
      .default(DEFAULTS.apiPort)
      .argParser((value) => parsePort(value, "--api-port")),
  )
  .addOption(
    new Option("--http-port <port>", "TCP port of the edge's plain HTTP listener; 0 picks a free port")
      .env("PORTICO_HTTP_PORT")
      .default(DEFAULTS.httpPort)
      .argParser((value) => parsePort(value, "--http-port")),
  )
  .addOption(
    new Option("--https-port <port>", "TCP port of the edge's HTTPS listener; 0 picks a free port")
      .env("PORTICO_HTTPS_PORT")
      .default(DEFAULTS.httpsPort)
      .argParser((value) => parsePort(value, "--https-port")),
  )
  .addOption(
    new Option("--zone <name>", "DNS zone of distribution domain names (d<13 characters>.<zone>)")
      .env("PORTICO_ZONE")
      .default(DEFAULTS.zone)
      .argParser(parseZone),
  )
  .addOption(
    new Option("--memory-cache <MiB>", "byte budget of the edge's memory cache, in MiB")
      .env("PORTICO_MEMORY_CACHE_MB")
      .default(DEFAULTS.memoryCacheMiB * 1024 * 1024, String(DEFAULTS.memoryCacheMiB))
      .argParser((value) => parseMebibytes(value, "--memory-cache")),
  )
  .addOption(
    new Option("--disk-cache <MiB>", "byte budget of the edge's disk cache under <data-dir>/cache, in MiB; 0 turns it off")
      .env("PORTICO_DISK_CACHE_MB")
      .default(DEFAULTS.diskCacheMiB * 1024 * 1024, String(DEFAULTS.diskCacheMiB))
      .argParser((value) => parseMebibytes(value, "--disk-cache", 0)),
  )
  .addOption(
    new Option(
      "--edge-workers <count>",
      "edge processes sharing the HTTP and HTTPS ports and their misses, each with an equal share of the " +
        "memory and disk cache budgets; 1 runs the edge in the main process",
    )
      .env("PORTICO_EDGE_WORKERS")
      .default(availableParallelism(), `the CPU count, ${availableParallelism()} here`)
      .argParser((value) => parseWorkerCount(value)),
  )
  .addOption(
    new Option("--log-level <level>", "least severe log level written to standard output")
      .env("PORTICO_LOG_LEVEL")
      .choices(["trace", "debug", "info", "warn", "error", "fatal", "silent"])
      .default(DEFAULTS.logLevel),
  )
  .addOption(
    new Option("--log-interval <seconds>", "seconds between access log rotations; each rotation delivers the files")
      .env("PORTICO_LOG_INTERVAL")
      .default(DEFAULTS.logIntervalSeconds)
      .argParser((value) => parseSeconds(value, "--log-interval")),
  )
  .addOption(
    new Option(
      "--access-log-dir <path>",
      "folder that receives every distribution's access log files (gzip, CloudFront format), besides Logging.Bucket",
    ).env("PORTICO_ACCESS_LOG_DIR"),
  )
  .addOption(
    new Option(
      "--metrics-max-series <count>",
      "most custom metric series the metrics database keeps; PutMetricData that would create more is rejected with LimitExceeded",
    )
      .env("PORTICO_METRICS_MAX_SERIES")
      .default(DEFAULTS.metricsMaxSeries)
      .argParser((value) => parseSeriesLimit(value)),
  )
  .addOption(
    new Option(
      "--metrics-disk-mb <MiB>",
      "byte budget of the metrics database <data-dir>/metrics/metrics.db, in MiB (16 or more); " +
        "past it the oldest histograms, then the oldest buckets are pruned",
    )
      .env("PORTICO_METRICS_DISK_MB")
      .default(DEFAULTS.metricsDiskMiB * 1024 * 1024, String(DEFAULTS.metricsDiskMiB))
      .argParser((value) => parseMetricsDiskBudget(value)),
  )
  .addHelpText(
    "after",
    "\nRoot credentials come from PORTICO_ACCESS_KEY_ID and PORTICO_SECRET_ACCESS_KEY. When both are\n" +
      "unset, a key pair is generated on first start, stored in <data-dir>/credentials.json (mode 0600)\n" +
      "and printed once. GET /_portico/health on the API port returns 200 once every part is ready.\n" +
      "IAM users' secret keys are encrypted under <data-dir>/iam/master.key (mode 0600, created on first\n" +
      "start), or under PORTICO_MASTER_KEY (32 bytes as 64 hex digits or base64) when it is set; manage\n" +
      "users with 'portico users' and 'portico keys'.",
  )
  .action(async (flags: UpFlags) => {
    await runUp(flags);
  });

program
  .command("status")
  .description(
    "Print the distributions with their config versions, the live edges, and each distribution's " +
      "hit rate and error rate over the last minutes, read from a running Portico's API endpoint.",
  )
  .addOption(
    new Option(
      "--endpoint <url>",
      "API endpoint of the running Portico (default: the one that `portico up` recorded in the data folder)",
    ).env("PORTICO_ENDPOINT"),
  )
  .addOption(
    new Option("--data-dir <path>", "data folder whose credentials.json has the root key, used when AWS_ACCESS_KEY_ID is unset")
      .env("PORTICO_DATA_DIR")
      .default(DEFAULTS.dataDir),
  )
  .addOption(
    new Option("--minutes <count>", "how many recent minutes the rates cover, 1 to 60")
      .default(5)
      .argParser((value) => parseMinutes(value)),
  )
  .option("--json", "print the report as JSON instead of tables", false)
  .action(async (flags: { endpoint?: string; dataDir: string; minutes: number; json: boolean }) => {
    const dataDir = resolveDataDir(flags.dataDir);
    const endpoint = flags.endpoint || (await recordedEndpoint(dataDir));
    if (endpoint === undefined) {
      throw new Error(
        `no running Portico recorded its API endpoint in ${dataDir}/api-endpoint: start it with ` +
          `portico up --data-dir ${dataDir}, or pass --endpoint`,
      );
    }
    await runStatus({ endpoint, dataDir, minutes: flags.minutes, json: flags.json });
  });

function parseMinutes(value: string): number {
  const minutes = Number(value);
  if (!/^\d+$/.test(value) || minutes < 1 || minutes > 60) {
    throw new Error(`invalid --minutes '${value}': expected a whole number from 1 to 60`);
  }
  return minutes;
}

async function runUp(flags: UpFlags): Promise<void> {
  const log = createLogger(flags.logLevel);
  const options: PorticoOptions = {
    dataDir: resolveDataDir(flags.dataDir),
    host: flags.host,
    apiPort: flags.apiPort,
    httpPort: flags.httpPort,
    httpsPort: flags.httpsPort,
    zone: flags.zone,
    memoryCacheBytes: flags.memoryCache,
    diskCacheBytes: flags.diskCache,
    edgeWorkers: flags.edgeWorkers,
    logLevel: flags.logLevel,
    rootAccessKeyId: process.env.PORTICO_ACCESS_KEY_ID || undefined,
    rootSecretAccessKey: process.env.PORTICO_SECRET_ACCESS_KEY || undefined,
    logIntervalSeconds: flags.logInterval,
    accessLogDir: flags.accessLogDir === undefined ? undefined : resolve(flags.accessLogDir),
    metricsMaxSeries: flags.metricsMaxSeries,
    metricsDiskBytes: flags.metricsDiskMb,
  };
  const portico = await startPortico(options, log);

  const { credentials } = portico;
  if (credentials.rootGenerated) {
    process.stderr.write(
      `\nGenerated root credentials, stored in ${options.dataDir}/credentials.json (shown only this once):\n` +
        `  export AWS_ACCESS_KEY_ID=${credentials.root.accessKeyId}\n` +
        `  export AWS_SECRET_ACCESS_KEY=${credentials.root.secretAccessKey}\n`,
    );
  }
  process.stderr.write(
    `\nPortico is ready.\n` +
      `  API endpoint (S3, CloudFront, CloudWatch): ${portico.apiUrl}\n` +
      `  Edge HTTP:  port ${portico.httpPort}, e.g. http://dXXXXXXXXXXXXX.${options.zone}:${portico.httpPort}/\n` +
      `  Edge HTTPS: port ${portico.httpsPort}, certificates signed by ${portico.caCertificatePath}\n` +
      `  Root access key id: ${credentials.root.accessKeyId}\n` +
      `  Data folder: ${options.dataDir}\n\n`,
  );
  log.info(
    {
      apiUrl: portico.apiUrl,
      apiPort: portico.apiPort,
      httpPort: portico.httpPort,
      httpsPort: portico.httpsPort,
      caCertificatePath: portico.caCertificatePath,
      dataDir: options.dataDir,
      zone: options.zone,
    },
    "portico ready",
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // A second signal means the operator does not want to wait for the drain.
      // SQLite writes are synchronous, so the pending metrics are saved before the exit.
      try {
        const report = portico.prepareImmediateExit();
        log.warn(
          { signal, ...report },
          `second signal during shutdown; exiting without waiting for requests in flight, ${report.lostAccessLogRecords} access log records not delivered are lost`,
        );
      } catch (error) {
        log.error({ err: error, signal }, "second signal during shutdown; writing the pending metrics failed, so they are lost");
      }
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "stopping");
    portico.close().then(
      () => {
        log.info("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, "failed to stop cleanly");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // A terminal that closes sends SIGHUP, whose default action would end the process without a drain.
  process.on("SIGHUP", stop);
}

registerIamCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`portico: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
