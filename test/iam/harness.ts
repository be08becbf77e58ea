import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { IAMClient } from "@aws-sdk/client-iam";
import { S3Client } from "@aws-sdk/client-s3";
import { pino } from "pino";
import { StaticCredentialStore, type LoadedCredentials } from "../../src/api/auth/credentials.js";
import type { ApiRequest, ProtocolService } from "../../src/api/context.js";
import { ApiError } from "../../src/api/errors.js";
import { createIamService } from "../../src/api/iam/index.js";
import { createS3Service, type S3Service } from "../../src/api/s3/index.js";
import { ApiServer } from "../../src/api/server.js";
import type { Logger } from "../../src/common/logger.js";
import { openIam, type Iam } from "../../src/iam/index.js";

export const TEST_CREDENTIALS: LoadedCredentials = {
  accountId: "123456789012",
  root: { accessKeyId: "AKIATESTROOT0000001", secretAccessKey: "rootSecretKeyForTestsOnly0000000000000001" },
  service: { accessKeyId: "ASIATESTSERVICE0001", secretAccessKey: "serviceSecretKeyForTestsOnly000000000001" },
  rootGenerated: false,
};

const notImplementedService: ProtocolService = {
  async handle() {
    throw new ApiError("NotImplemented", 501, "not part of this test");
  },
  renderError(error: ApiError, _request: ApiRequest, response) {
    response.writeHead(error.status, { "content-type": "text/plain" });
    response.end(error.code);
  },
};

export interface IamHarness {
  endpoint: string;
  dataDir: string;
  iam: Iam;
  s3: S3Service;
  server: ApiServer;
  root: IAMClient;
  /** Every log line written so far, as text. */
  logText(): string;
  s3Client(accessKeyId: string, secretAccessKey: string): S3Client;
  iamClient(accessKeyId: string, secretAccessKey: string): IAMClient;
  close(): Promise<void>;
}

/** A pino logger at debug level that keeps its output in memory. */
function capturingLogger(): { log: Logger; text: () => string } {
  let output = "";
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      output += chunk.toString("utf8");
      done();
    },
  });
  return { log: pino({ level: "debug" }, sink), text: () => output };
}

/**
 * Starts the API endpoint with the S3 and IAM services over a fresh data
 * folder, as `portico up` wires them, with the log captured.
 */
export async function startIamHarness(options: { masterKey?: string; dataDir?: string } = {}): Promise<IamHarness> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "portico-iam-")));
  await writeFile(join(dataDir, "credentials.json"), JSON.stringify({ accountId: TEST_CREDENTIALS.accountId, service: TEST_CREDENTIALS.service }));
  const { log, text } = capturingLogger();
  const iam = await openIam({ dataDir, accountId: TEST_CREDENTIALS.accountId, masterKey: options.masterKey, log });
  const credentials = iam.credentialStore(new StaticCredentialStore(TEST_CREDENTIALS));
  const s3 = await createS3Service({ dataDir, accountId: TEST_CREDENTIALS.accountId, credentials, log, owners: iam.store });
  const server = new ApiServer({
    credentials,
    services: {
      s3,
      cloudfront: notImplementedService,
      cloudwatch: notImplementedService,
      iam: createIamService({
        store: iam.store,
        accountId: TEST_CREDENTIALS.accountId,
        rootAccessKeyId: TEST_CREDENTIALS.root.accessKeyId,
      }),
    },
    log,
    health: () => "ok",
  });
  const address = await server.listen(0, "127.0.0.1");
  const endpoint = `http://127.0.0.1:${address.port}`;
  const clients: Array<{ destroy(): void }> = [];
  const iamClient = (accessKeyId: string, secretAccessKey: string): IAMClient => {
    const client = new IAMClient({ endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
    clients.push(client);
    return client;
  };
  const s3Client = (accessKeyId: string, secretAccessKey: string): S3Client => {
    const client = new S3Client({
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      maxAttempts: 1,
    });
    clients.push(client);
    return client;
  };
  return {
    endpoint,
    dataDir,
    iam,
    s3,
    server,
    root: iamClient(TEST_CREDENTIALS.root.accessKeyId, TEST_CREDENTIALS.root.secretAccessKey),
    logText: text,
    s3Client,
    iamClient,
    async close() {
      for (const client of clients) client.destroy();
      await server.close();
      await s3.close();
      iam.close();
      if (options.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
