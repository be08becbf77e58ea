import type { CustomErrorResponses } from "@aws-sdk/client-cloudfront";

/**
 * CustomErrorResponses (CloudFront Developer Guide, "Generate custom error
 * responses"): for an error status from the origin, or one the edge
 * generates when the origin cannot be reached, serve ResponsePagePath with
 * ResponseCode, and cache errors for ErrorCachingMinTTL.
 */
export interface CustomErrorRule {
  /** The page served instead of the error body, a path on this distribution. */
  responsePagePath: string | undefined;
  /** The status sent to the viewer with the page; the original status when unset. */
  responseCode: number | undefined;
  errorCachingMinTtlSeconds: number | undefined;
}

export function compileCustomErrors(config: CustomErrorResponses | undefined): Map<number, CustomErrorRule> {
  const rules = new Map<number, CustomErrorRule>();
  for (const item of config?.Items ?? []) {
    if (item.ErrorCode === undefined) continue;
    const responseCode = item.ResponseCode === undefined || item.ResponseCode === "" ? undefined : Number(item.ResponseCode);
    rules.set(item.ErrorCode, {
      responsePagePath: item.ResponsePagePath === undefined || item.ResponsePagePath === "" ? undefined : item.ResponsePagePath,
      responseCode: Number.isInteger(responseCode) ? responseCode : undefined,
      errorCachingMinTtlSeconds: item.ErrorCachingMinTTL,
    });
  }
  return rules;
}
