import { ApiError } from "../errors.js";

/** The service model's namespace, the prefix of `__type` in JSON and CBOR errors. */
export const CLOUDWATCH_SHAPE_NAMESPACE = "com.amazonaws.cloudwatch";

/**
 * Query error codes (the `awsQueryError` trait of each error shape) mapped to
 * the shape names that JSON and CBOR responses carry in `__type`.
 */
const SHAPE_BY_QUERY_CODE: Record<string, string> = {
  InvalidParameterValue: "InvalidParameterValueException",
  InvalidParameterCombination: "InvalidParameterCombinationException",
  MissingParameter: "MissingRequiredParameterException",
  InternalServiceError: "InternalServiceFault",
  InvalidNextToken: "InvalidNextToken",
  InvalidFormat: "InvalidFormatFault",
  LimitExceeded: "LimitExceededFault",
  ResourceNotFound: "ResourceNotFound",
  ValidationError: "ValidationException",
};

/** Error shapes whose message member is `Message` rather than `message`. */
const CAPITALIZED_MESSAGE_SHAPES = new Set(["InternalServiceFault", "LimitExceededException"]);

/** Returns `__type` for a JSON or CBOR error: the model shape when there is one, else the code. */
export function errorShapeType(code: string): string {
  const shape = SHAPE_BY_QUERY_CODE[code];
  return shape === undefined ? code : `${CLOUDWATCH_SHAPE_NAMESPACE}#${shape}`;
}

export function errorMessageMember(code: string): "message" | "Message" {
  const shape = SHAPE_BY_QUERY_CODE[code];
  return shape !== undefined && CAPITALIZED_MESSAGE_SHAPES.has(shape) ? "Message" : "message";
}

/** Returns the fault type of Query errors and `x-amzn-query-error`: `Sender` for client faults, `Receiver` for server faults. */
export function faultType(status: number): "Sender" | "Receiver" {
  return status >= 500 ? "Receiver" : "Sender";
}

export const cloudWatchErrors = {
  invalidParameterValue: (message: string) => new ApiError("InvalidParameterValue", 400, message),
  invalidParameterCombination: (message: string) => new ApiError("InvalidParameterCombination", 400, message),
  missingParameter: (name: string) =>
    new ApiError("MissingParameter", 400, `The parameter ${name} is required.`),
  invalidNextToken: () => new ApiError("InvalidNextToken", 400, "The NextToken is invalid or has expired."),
  validation: (message: string) => new ApiError("ValidationError", 400, message),
  limitExceeded: (message: string) => new ApiError("LimitExceeded", 400, message),
  resourceNotFound: (message: string) => new ApiError("ResourceNotFound", 404, message),
  invalidFormat: (message: string) => new ApiError("InvalidFormat", 400, message),
  /** JSON and CBOR: a body that does not parse or does not fit the input shape. */
  serialization: (message: string) => new ApiError("SerializationException", 400, message),
  /** Query: a form value that does not parse as its shape's type. */
  malformedQuery: (message: string) => new ApiError("MalformedQueryString", 400, message),
  unknownOperation: (status: number, operation: string) =>
    new ApiError("UnknownOperationException", status, `Unknown operation ${operation}.`),
  invalidAction: (action: string, version = "2010-08-01") =>
    new ApiError(
      "InvalidAction",
      400,
      `Could not find operation ${action} for version ${version}. This endpoint serves CloudWatch version 2010-08-01.`,
    ),
  missingAction: () => new ApiError("MissingAction", 400, "The request must contain the parameter Action."),
  queryMethodNotAllowed: (method: string) =>
    new ApiError(
      "MethodNotAllowed",
      405,
      `The method ${method} is not allowed; send Query requests as GET with a query string or as POST with an application/x-www-form-urlencoded body.`,
      { headers: { allow: "GET, POST" } },
    ),
  queryUnsupportedMediaType: (contentType: string) =>
    new ApiError(
      "UnsupportedMediaType",
      415,
      `The Content-Type ${JSON.stringify(contentType)} is not supported for a Query request body; use application/x-www-form-urlencoded.`,
    ),
  notImplemented: (operation: string) =>
    new ApiError("NotImplemented", 501, `The operation ${operation} is not implemented by this endpoint.`),
};
