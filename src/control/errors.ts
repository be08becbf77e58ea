import * as cloudFrontModel from "@aws-sdk/client-cloudfront";
import { ApiError } from "../api/errors.js";

/**
 * Errors that CloudFront returns without an error shape in its model:
 * malformed request documents and operations this server does not build.
 */
const STATUS_OUTSIDE_MODEL: Record<string, number> = {
  MalformedInput: 400,
  InvalidRequest: 400,
  InvalidationBatchAlreadyExists: 409,
  NotImplemented: 501,
  InternalError: 500,
};

/**
 * Maps each CloudFront error code to its HTTP status, read from the error
 * shapes of the installed SDK's model (`[-3, namespace, code, { httpError }]`).
 */
function loadErrorStatuses(): Map<string, number> {
  const statuses = new Map<string, number>(Object.entries(STATUS_OUTSIDE_MODEL));
  for (const [exportName, schema] of Object.entries(cloudFrontModel)) {
    if (!exportName.endsWith("$") || !Array.isArray(schema) || schema[0] !== -3) continue;
    const code = schema[2] as unknown;
    const traits = schema[3] as { httpError?: unknown } | undefined;
    if (typeof code === "string" && typeof traits?.httpError === "number") {
      statuses.set(code, traits.httpError);
    }
  }
  return statuses;
}

const ERROR_STATUSES = loadErrorStatuses();

/** Returns the HTTP status CloudFront sends with `code`, or 400 for a code outside the model. */
export function cloudFrontErrorStatus(code: string): number {
  return ERROR_STATUSES.get(code) ?? 400;
}

/** Builds a CloudFront error, with the status that CloudFront's model gives its code. */
export function cloudFrontError(code: string, message: string): ApiError {
  return new ApiError(code, cloudFrontErrorStatus(code), message);
}

/** Errors raised in several places of the control plane. */
export const controlErrors = {
  invalidArgument: (message: string) => cloudFrontError("InvalidArgument", message),
  noSuchDistribution: (id: string) =>
    cloudFrontError("NoSuchDistribution", `The specified distribution does not exist: ${id}.`),
  noSuchOriginAccessControl: (id: string) =>
    cloudFrontError("NoSuchOriginAccessControl", `The specified origin access control does not exist: ${id}.`),
  noSuchInvalidation: (id: string) =>
    cloudFrontError("NoSuchInvalidation", `The specified invalidation does not exist: ${id}.`),
  missingIfMatch: () =>
    cloudFrontError(
      "InvalidIfMatchVersion",
      "The If-Match version is missing or not valid. Send the ETag of the latest Get request in If-Match.",
    ),
  preconditionFailed: (given: string) =>
    cloudFrontError(
      "PreconditionFailed",
      `The If-Match version '${given}' is not the current ETag; get the resource again and retry with its ETag.`,
    ),
};
