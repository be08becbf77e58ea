import type { Invalidation, InvalidationBatch, InvalidationList } from "@aws-sdk/client-cloudfront";
import { markerPage, newResourceId, pageSize, type ControlContext } from "./context.js";
import { cloudFrontError, controlErrors } from "./errors.js";
import type { InvalidationRecord } from "./store.js";
import { checkQuantities } from "./validation.js";

/** CloudFront accepts at most 3,000 paths in one invalidation batch. */
export const MAX_PATHS_PER_INVALIDATION = 3000;
const MAX_PATH_LENGTH = 4096;

/**
 * Limits on invalidations in progress per distribution (CloudFront Developer
 * Guide, "Concurrent invalidation request maximum"): 3,000 individual paths,
 * and separately 15 wildcard paths.
 */
export const MAX_FILE_PATHS_IN_PROGRESS = 3000;
export const MAX_WILDCARD_PATHS_IN_PROGRESS = 15;

/** A `%` must start a two-digit hexadecimal escape. */
const BROKEN_PERCENT_ESCAPE = /%(?![0-9A-Fa-f]{2})/;

/**
 * Checks invalidation paths (CloudFront Developer Guide, "Specifying the
 * objects to invalidate"): each starts with `/`, and `*` may appear only as
 * the last character.
 */
export function validateInvalidationPaths(paths: string[]): void {
  if (paths.length === 0) throw controlErrors.invalidArgument("InvalidationBatch.Paths must list at least one path.");
  if (paths.length > MAX_PATHS_PER_INVALIDATION) {
    throw cloudFrontError(
      "BatchTooLarge",
      `InvalidationBatch.Paths lists ${paths.length} paths; the maximum is ${MAX_PATHS_PER_INVALIDATION}.`,
    );
  }
  for (const path of paths) {
    if (!path.startsWith("/")) {
      throw controlErrors.invalidArgument(`The invalidation path '${path}' must start with '/'.`);
    }
    const star = path.indexOf("*");
    if (star >= 0 && star !== path.length - 1) {
      throw controlErrors.invalidArgument(`The invalidation path '${path}' may contain '*' only as its last character.`);
    }
    if (BROKEN_PERCENT_ESCAPE.test(path)) {
      throw controlErrors.invalidArgument(
        `The invalidation path '${path}' has a '%' that does not start a URL escape such as %20; encode '%' as %25.`,
      );
    }
    if (path.length > MAX_PATH_LENGTH) {
      throw controlErrors.invalidArgument(`The invalidation path '${path.slice(0, 64)}...' is longer than ${MAX_PATH_LENGTH} characters.`);
    }
  }
}

/** Invalidations: paths that edges purge from their caches. */
export class InvalidationService {
  constructor(private readonly context: ControlContext) {}

  async create(distributionId: string, batch: InvalidationBatch): Promise<Invalidation> {
    const { store, tracker, log } = this.context;
    checkQuantities(batch, "InvalidationBatch");
    const paths = batch.Paths?.Items ?? [];
    validateInvalidationPaths(paths);
    const callerReference = batch.CallerReference ?? "";
    if (callerReference === "") throw controlErrors.invalidArgument("InvalidationBatch.CallerReference is required.");

    const outcome = store.transaction(() => {
      if (!store.getDistribution(distributionId)) throw controlErrors.noSuchDistribution(distributionId);
      // Same CallerReference and same paths: CloudFront returns the earlier
      // batch instead of creating one (CloudFront API reference, CreateInvalidation).
      const existing = store.findInvalidationByCallerReference(distributionId, callerReference);
      if (existing) {
        if (JSON.stringify(existing.paths) !== JSON.stringify(paths)) {
          throw cloudFrontError(
            "InvalidationBatchAlreadyExists",
            `The caller reference '${callerReference}' was already used for invalidation ${existing.id} with different paths.`,
          );
        }
        return { record: existing, created: false };
      }
      this.checkInProgressLimits(distributionId, paths);
      let id = newResourceId("I");
      while (store.getInvalidation(distributionId, id)) id = newResourceId("I");
      const pendingEdgeIds = tracker.liveEdgeIds();
      const record: InvalidationRecord = {
        id,
        distributionId,
        callerReference,
        paths,
        status: pendingEdgeIds.length === 0 ? "Completed" : "InProgress",
        createTimeMs: Date.now(),
        pendingEdgeIds,
      };
      store.insertInvalidation(record);
      // Registered before publishing, so no acknowledgement can arrive unseen.
      tracker.trackInvalidation(id, pendingEdgeIds);
      return { record, created: true };
    });

    if (outcome.created) {
      const { record } = outcome;
      log.info({ distributionId, invalidationId: record.id, paths: record.paths.length }, "invalidation created");
      await tracker.publish({ type: "invalidation.created", distributionId, invalidationId: record.id, paths });
    }
    return this.toInvalidation(outcome.record);
  }

  /** Rejects a batch that would take the distribution past the limits on paths in progress. */
  private checkInProgressLimits(distributionId: string, paths: string[]): void {
    const { store, tracker } = this.context;
    let filePaths = 0;
    let wildcardPaths = 0;
    const count = (path: string) => (path.endsWith("*") ? (wildcardPaths += 1) : (filePaths += 1));
    for (const entry of store.listInvalidations(distributionId, undefined, Number.MAX_SAFE_INTEGER)) {
      if (tracker.invalidationStatus(entry.id, entry.status) === "InProgress") entry.paths.forEach(count);
    }
    paths.forEach(count);
    if (filePaths > MAX_FILE_PATHS_IN_PROGRESS || wildcardPaths > MAX_WILDCARD_PATHS_IN_PROGRESS) {
      throw cloudFrontError(
        "TooManyInvalidationsInProgress",
        `Distribution ${distributionId} would have ${filePaths} file paths and ${wildcardPaths} wildcard paths in progress; ` +
          `the maximums are ${MAX_FILE_PATHS_IN_PROGRESS} and ${MAX_WILDCARD_PATHS_IN_PROGRESS}. Retry when earlier invalidations complete.`,
      );
    }
  }

  get(distributionId: string, id: string): Invalidation {
    const { store } = this.context;
    if (!store.getDistribution(distributionId)) throw controlErrors.noSuchDistribution(distributionId);
    const record = store.getInvalidation(distributionId, id);
    if (!record) throw controlErrors.noSuchInvalidation(id);
    return this.toInvalidation(record);
  }

  list(distributionId: string, marker: string | undefined, maxItems: number | undefined): InvalidationList {
    const { store, tracker } = this.context;
    if (!store.getDistribution(distributionId)) throw controlErrors.noSuchDistribution(distributionId);
    const limit = pageSize(maxItems);
    if (marker && !store.getInvalidation(distributionId, marker)) {
      throw controlErrors.invalidArgument(
        `Marker '${marker}' is not an invalidation of ${distributionId}; pass the NextMarker of the previous page.`,
      );
    }
    const page = store.listInvalidations(distributionId, marker || undefined, limit + 1);
    return markerPage(page, limit, marker, (record) => ({
      Id: record.id,
      CreateTime: new Date(record.createTimeMs),
      Status: tracker.invalidationStatus(record.id, record.status),
    }));
  }

  private toInvalidation(record: InvalidationRecord): Invalidation {
    return {
      Id: record.id,
      Status: this.context.tracker.invalidationStatus(record.id, record.status),
      CreateTime: new Date(record.createTimeMs),
      InvalidationBatch: {
        Paths: { Quantity: record.paths.length, Items: record.paths },
        CallerReference: record.callerReference,
      },
    };
  }
}
