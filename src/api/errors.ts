/**
 * A protocol error: an AWS error code with its HTTP status. Each protocol
 * renders it in its own error document (S3 `<Error>`, CloudFront
 * `<ErrorResponse>`, CloudWatch JSON, Query XML or CBOR).
 */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  /** Extra headers to send with the error response. */
  readonly headers: Record<string, string>;
  /** Extra elements of the S3 error document, such as `BucketName` or `Key`. */
  readonly details: Record<string, string>;

  constructor(
    code: string,
    status: number,
    message: string,
    options: { headers?: Record<string, string>; details?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ApiError";
    this.code = code;
    this.status = status;
    this.headers = options.headers ?? {};
    this.details = options.details ?? {};
  }
}

/** Errors shared by every signed protocol. */
export const authErrors = {
  missingAuthentication: (message = "Request is missing Authentication Token") =>
    new ApiError("MissingAuthenticationToken", 403, message),
  invalidAccessKeyId: () =>
    new ApiError(
      "InvalidAccessKeyId",
      403,
      "The AWS Access Key Id you provided does not exist in our records.",
    ),
  signatureDoesNotMatch: (details: Record<string, string> = {}) =>
    new ApiError(
      "SignatureDoesNotMatch",
      403,
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
      { details },
    ),
  authorizationHeaderMalformed: (message: string) =>
    new ApiError("AuthorizationHeaderMalformed", 400, message),
  requestTimeTooSkewed: (requestTime: string, serverTime: string) =>
    new ApiError(
      "RequestTimeTooSkewed",
      403,
      "The difference between the request time and the current time is too large.",
      { details: { RequestTime: requestTime, ServerTime: serverTime, MaxAllowedSkewMilliseconds: "900000" } },
    ),
  accessDenied: (message = "Access Denied") => new ApiError("AccessDenied", 403, message),
};
