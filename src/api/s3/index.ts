import type { ServerResponse } from "node:http";
import type { Logger } from "../../common/logger.js";
import type { ApiRequest, ProtocolService } from "../context.js";
import type { ApiError } from "../errors.js";
import type { CredentialStore } from "../auth/principal.js";
import { DEFAULT_BODY_IDLE_TIMEOUT_MS } from "../auth/payload.js";
import { hasSigV2, verifySigV2 } from "../auth/sigv2.js";
import { BucketStore } from "../../store/bucket-store.js";
import { validateObjectKey } from "../../store/names.js";
import { IAM_ACTIONS, authorize, bindBucketOwnership, resourceArn, type BucketOwnership } from "./authorize.js";
import * as buckets from "./bucket-ops.js";
import type { S3Context, S3Handler } from "./context.js";
import * as lists from "./list-ops.js";
import * as multipart from "./multipart-ops.js";
import * as objects from "./object-ops.js";
import { renderS3Error } from "./render-error.js";
import { routeRequest, virtualHostBucket, type S3Operation } from "./router.js";

/** The S3 protocol on the API endpoint, backed by the embedded bucket store. */
export interface S3Service extends ProtocolService {
  /** Returns whether the embedded store has a bucket of this name. */
  bucketExists(name: string): boolean;
  close(): Promise<void>;
}

const HANDLERS: Record<S3Operation, S3Handler> = {
  ListBuckets: buckets.listBuckets,
  CreateBucket: buckets.createBucket,
  HeadBucket: buckets.headBucket,
  DeleteBucket: buckets.deleteBucket,
  GetBucketLocation: buckets.getBucketLocation,
  GetBucketPolicy: buckets.getBucketPolicy,
  PutBucketPolicy: buckets.putBucketPolicy,
  DeleteBucketPolicy: buckets.deleteBucketPolicy,
  DeleteObjects: buckets.deleteObjects,
  ListObjects: lists.listObjectsV1,
  ListObjectsV2: lists.listObjectsV2,
  PutObject: objects.putObject,
  CopyObject: objects.copyObject,
  GetObject: objects.getObject,
  HeadObject: objects.getObject,
  DeleteObject: objects.deleteObject,
  CreateMultipartUpload: multipart.createMultipartUpload,
  UploadPart: multipart.uploadPart,
  CompleteMultipartUpload: multipart.completeMultipartUpload,
  AbortMultipartUpload: multipart.abortMultipartUpload,
  ListParts: multipart.listParts,
  ListMultipartUploads: multipart.listMultipartUploads,
};

/** Operations whose authorization the handler does itself: account-level ones and per-key DeleteObjects. */
const SELF_AUTHORIZED = new Set<S3Operation>(["ListBuckets", "CreateBucket", "DeleteObjects"]);

class EmbeddedS3Service implements S3Service {
  constructor(
    private readonly context: S3Context,
    private readonly credentials: CredentialStore,
  ) {}

  async handle(request: ApiRequest, response: ServerResponse): Promise<void> {
    // The server verifies SigV4 and passes every other request as anonymous;
    // a SigV2 signature is recognised and verified here.
    if (request.principal.type === "anonymous" && hasSigV2(request)) {
      request.principal = verifySigV2(request, this.credentials, Date.now(), virtualHostBucket(request.raw.headers.host));
    }
    bindBucketOwnership(request, this.context.owners);
    const route = routeRequest(request);
    // UploadPartCopy is routed as UploadPart, whose handler copies when x-amz-copy-source is set.
    const loggedOperation =
      route.operation === "UploadPart" && request.raw.headers["x-amz-copy-source"] !== undefined ? "UploadPartCopy" : route.operation;
    request.log = request.log.child({ operation: loggedOperation, bucket: route.bucket });
    if (route.key !== undefined) validateObjectKey(route.key);

    if (!SELF_AUTHORIZED.has(route.operation)) {
      const bucket = this.context.store.requireBucket(route.bucket!);
      const isObjectOperation = route.key !== undefined;
      authorize(request, bucket, IAM_ACTIONS[route.operation], resourceArn(bucket.name, isObjectOperation ? route.key : undefined));
    }
    await HANDLERS[route.operation](this.context, request, response, route);
  }

  renderError(error: ApiError, request: ApiRequest, response: ServerResponse): void {
    renderS3Error(error, request, response);
  }

  bucketExists(name: string): boolean {
    return this.context.store.metadata.getBucket(name) !== undefined;
  }

  async close(): Promise<void> {
    this.context.store.close();
  }
}

/** Opens the bucket store under `dataDir` and returns the S3 protocol service. */
export async function createS3Service(options: {
  dataDir: string;
  accountId: string;
  credentials: CredentialStore;
  log: Logger;
  /** How long a request body may stall before RequestTimeout; defaults to DEFAULT_BODY_IDLE_TIMEOUT_MS. */
  bodyIdleTimeoutMs?: number | undefined;
  /** Bucket ownership by IAM users, when users exist. */
  owners?: BucketOwnership | undefined;
}): Promise<S3Service> {
  const log = options.log.child({ component: "store" });
  const store = await BucketStore.open(options.dataDir, log);
  const bodyIdleTimeoutMs = options.bodyIdleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS;
  return new EmbeddedS3Service(
    { store, accountId: options.accountId, log, owners: options.owners, bodyIdleTimeoutMs },
    options.credentials,
  );
}
