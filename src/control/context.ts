import type { Logger } from "../common/logger.js";
import { randomLowerAlphanumeric, randomUpperAlphanumeric } from "../common/ids.js";
import type { DeploymentTracker } from "./deployment.js";
import { controlErrors } from "./errors.js";
import type { ControlStore } from "./store.js";

/** State and services shared by every part of the control plane. */
export interface ControlContext {
  store: ControlStore;
  tracker: DeploymentTracker;
  log: Logger;
  accountId: string;
  /** DNS zone under which distribution domain names are created. */
  zone: string;
  /** Returns whether the bucket store has a bucket of this name. */
  bucketExists(name: string): boolean;
}

/** Generates a CloudFront resource id: a letter followed by 13 upper-case alphanumerics. */
export function newResourceId(prefix: "E" | "I"): string {
  return prefix + randomUpperAlphanumeric(13);
}

/** A fresh opaque ETag for a new version of a resource's config. */
export function newEtag(): string {
  return "E" + randomUpperAlphanumeric(13);
}

export function newDistributionDomainName(zone: string): string {
  return `d${randomLowerAlphanumeric(13)}.${zone}`;
}

/**
 * Applies CloudFront's optimistic concurrency rule: a change must carry the
 * current ETag in If-Match.
 */
export function checkIfMatch(ifMatch: string | undefined, currentEtag: string): void {
  if (ifMatch === undefined || ifMatch === "") throw controlErrors.missingIfMatch();
  if (ifMatch !== currentEtag) throw controlErrors.preconditionFailed(ifMatch);
}

/** Reads the Marker and MaxItems of a list request, with CloudFront's default of 100 items. */
/**
 * Builds CloudFront's list envelope from `rows`, fetched as one more than
 * `limit` so that the extra row tells whether another page follows.
 */
export function markerPage<Row extends { id: string }, Item>(
  rows: Row[],
  limit: number,
  marker: string | undefined,
  toItem: (row: Row) => Item,
) {
  const items = rows.slice(0, limit);
  const isTruncated = rows.length > limit;
  return {
    Marker: marker ?? "",
    ...(isTruncated ? { NextMarker: items[items.length - 1]!.id } : {}),
    MaxItems: limit,
    IsTruncated: isTruncated,
    Quantity: items.length,
    Items: items.map(toItem),
  };
}

export function pageSize(maxItems: number | undefined): number {
  if (maxItems === undefined) return 100;
  if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > 1000) {
    throw controlErrors.invalidArgument(`MaxItems must be an integer from 1 to 1000, not ${maxItems}.`);
  }
  return maxItems;
}
