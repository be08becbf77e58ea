import { mkdtemp, rm } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { ApiServer } from "../../src/api/server.js";
import { StaticCredentialStore, type LoadedCredentials } from "../../src/api/auth/credentials.js";
import type { ApiRequest, ProtocolService } from "../../src/api/context.js";
import { ApiError } from "../../src/api/errors.js";
import { createS3Service, type S3Service } from "../../src/api/s3/index.js";
import { silentLogger } from "../../src/common/logger.js";

export const TEST_CREDENTIALS: LoadedCredentials = {
  accountId: "123456789012",
  root: { accessKeyId: "AKIATESTROOT0000001", secretAccessKey: "rootSecretKeyForTestsOnly0000000000000001" },
  service: { accessKeyId: "ASIATESTSERVICE0001", secretAccessKey: "serviceSecretKeyForTestsOnly000000000001" },
  rootGenerated: false,
};

/** A protocol other than S3, present only so the server has all three. */
const notImplementedService: ProtocolService = {
  async handle() {
    throw new ApiError("NotImplemented", 501, "not part of this test");
  },
  renderError(error: ApiError, _request: ApiRequest, response: ServerResponse) {
    response.writeHead(error.status, { "content-type": "text/plain" });
    response.end(error.code);
  },
};

export interface RunningStore {
  endpoint: string;
  port: number;
  dataDir: string;
  s3: S3Service;
  server: ApiServer;
  client: S3Client;
  stop(): Promise<void>;
}

export async function makeDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "portico-store-"));
}

export async function removeDataDir(dataDir: string): Promise<void> {
  await rm(dataDir, { recursive: true, force: true });
}

/** Starts the API server with the S3 service on 127.0.0.1 and an SDK client for the root key. */
export async function startStore(dataDir: string, options: { bodyIdleTimeoutMs?: number } = {}): Promise<RunningStore> {
  const credentials = new StaticCredentialStore(TEST_CREDENTIALS);
  const log = silentLogger();
  const s3 = await createS3Service({
    dataDir,
    accountId: TEST_CREDENTIALS.accountId,
    credentials,
    log,
    bodyIdleTimeoutMs: options.bodyIdleTimeoutMs,
  });
  const server = new ApiServer({
    credentials,
    services: { s3, cloudfront: notImplementedService, cloudwatch: notImplementedService },
    log,
    health: () => "ok",
  });
  const address = await server.listen(0, "127.0.0.1");
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_CREDENTIALS.root.accessKeyId, secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey },
  });
  return {
    endpoint,
    port: address.port,
    dataDir,
    s3,
    server,
    client,
    async stop() {
      client.destroy();
      await server.close();
      await s3.close();
    },
  };
}

/** Awaits `promise` and asserts that it failed with the S3 error `code` and HTTP `status`. */
export async function expectS3Error(promise: Promise<unknown>, code: string, status: number): Promise<S3ServiceException> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof S3ServiceException, `expected an S3 error, got ${String(error)}`);
    assert.equal(error.name, code);
    assert.equal(error.$metadata.httpStatusCode, status);
    return error;
  }
  assert.fail(`expected ${code}, but the request succeeded`);
}
