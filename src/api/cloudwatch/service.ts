import type { ServerResponse } from "node:http";
import { gunzipSync } from "node:zlib";
import { cbor } from "@smithy/core/cbor";
import type { Logger } from "../../common/logger.js";
import type { AlarmEvaluator } from "../../metrics/alarm-evaluator.js";
import type { MetricsReader } from "../../metrics/reader.js";
import type { ApiRequest, ProtocolService } from "../context.js";
import { ApiError } from "../errors.js";
import { MAX_BUFFERED_BODY_BYTES } from "../server.js";
import { CborShapeError, checkCborItems } from "./cbor-guard.js";
import {
  buildFormTree,
  decodeDocumentInput,
  decodeForm,
  encodeCbor,
  encodeJson,
  encodeXml,
  escapeXml,
  type Struct,
} from "./codec.js";
import { cloudWatchErrors, errorMessageMember, errorShapeType, faultType } from "./errors.js";
import { ALARM_OPERATIONS } from "./alarms.js";
import { OPERATIONS as METRIC_OPERATIONS, type OperationHandler } from "./operations.js";
import { ALL_OPERATIONS, OPERATION_SHAPES } from "./shapes.js";

/** The operations built here. Every other model operation is rejected with NotImplemented. */
const OPERATIONS: Record<string, OperationHandler> = { ...METRIC_OPERATIONS, ...ALARM_OPERATIONS };

/** The awsJson1_0 `X-Amz-Target` prefix and the RPC v2 CBOR service path, from the model's service name. */
const SERVICE_NAME = "GraniteServiceVersion20100801";
const JSON_TARGET_PREFIX = `${SERVICE_NAME}.`;
const CBOR_PATH_PREFIX = `/service/${SERVICE_NAME}/operation/`;
const API_VERSION = "2010-08-01";
const QUERY_XML_NAMESPACE = `http://monitoring.amazonaws.com/doc/${API_VERSION}/`;
const JSON_CONTENT_TYPE = "application/x-amz-json-1.0";
const CBOR_CONTENT_TYPE = "application/cbor";
const FORM_CONTENT_TYPE = "application/x-www-form-urlencoded";

type WireProtocol = "json" | "cbor" | "query";

export interface CloudWatchServiceOptions {
  reader: MetricsReader;
  alarms: AlarmEvaluator;
  accountId: string;
  log: Logger;
}

/**
 * The CloudWatch API on the shared endpoint, in the three protocols that
 * current clients speak: awsJson1_0 (X-Amz-Target), Smithy RPC v2 CBOR
 * (`/service/.../operation/...`) and awsQuery (form body with `Action`).
 * The model is awsQueryCompatible, so JSON and CBOR errors also carry the
 * Query error code in `x-amzn-query-error`.
 */
export class CloudWatchService implements ProtocolService {
  constructor(private readonly options: CloudWatchServiceOptions) {}

  async handle(request: ApiRequest, response: ServerResponse): Promise<void> {
    const protocol = detectProtocol(request);
    const body = decompress(request);
    let operation: string;
    let input: Struct;

    if (protocol === "json") {
      operation = String(request.raw.headers["x-amz-target"]).slice(JSON_TARGET_PREFIX.length);
      checkOperation(operation, protocol);
      input = decodeDocumentInput(OPERATION_SHAPES[operation]!.input, parseJsonBody(body), "json");
    } else if (protocol === "cbor") {
      operation = request.path.slice(CBOR_PATH_PREFIX.length);
      checkOperation(operation, protocol);
      input = decodeDocumentInput(OPERATION_SHAPES[operation]!.input, parseCborBody(body), "cbor");
    } else {
      const params = queryParams(request, body);
      const action = params.find(([name]) => name === "Action")?.[1];
      if (action === undefined || action === "") throw cloudWatchErrors.missingAction();
      operation = action;
      checkVersion(operation, params.find(([name]) => name === "Version")?.[1]);
      checkOperation(operation, protocol);
      const tree = buildFormTree(params.filter(([name]) => name !== "Action" && name !== "Version"));
      input = (decodeForm(OPERATION_SHAPES[operation]!.input, tree, "") ?? {}) as Struct;
    }

    const handler = OPERATIONS[operation]!;
    request.log.debug({ operation, protocol }, "cloudwatch request");
    const { reader, alarms, accountId } = this.options;
    // Edges in other processes send what they have recorded, so a read sees every finished request.
    await reader.sync();
    const output = await handler(input, { reader, alarms, accountId, log: request.log });
    this.writeOutput(protocol, operation, output, request, response);
  }

  renderError(error: ApiError, request: ApiRequest, response: ServerResponse): void {
    const protocol = detectProtocol(request);
    const type = faultType(error.status);
    const headers: Record<string, string> = { ...error.headers, "x-amzn-requestid": request.requestId };
    if (protocol === "query") {
      const xml =
        `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${QUERY_XML_NAMESPACE}">` +
        `<Error><Type>${type}</Type><Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message></Error>` +
        `<RequestId>${request.requestId}</RequestId></ErrorResponse>`;
      send(response, error.status, { ...headers, "content-type": "text/xml" }, Buffer.from(xml));
      return;
    }
    const document: Record<string, string> = { __type: errorShapeType(error.code) };
    document[errorMessageMember(error.code)] = error.message;
    headers["x-amzn-query-error"] = `${error.code};${type}`;
    if (protocol === "json") {
      send(response, error.status, { ...headers, "content-type": JSON_CONTENT_TYPE }, Buffer.from(JSON.stringify(document)));
    } else {
      send(
        response,
        error.status,
        { ...headers, "content-type": CBOR_CONTENT_TYPE, "smithy-protocol": "rpc-v2-cbor" },
        Buffer.from(cbor.serialize(document)),
      );
    }
  }

  private writeOutput(
    protocol: WireProtocol,
    operation: string,
    output: Struct | undefined,
    request: ApiRequest,
    response: ServerResponse,
  ): void {
    const shape = OPERATION_SHAPES[operation]!.output;
    const headers = { "x-amzn-requestid": request.requestId };
    if (protocol === "json") {
      const document = shape === undefined || output === undefined ? {} : encodeJson(shape, output);
      send(response, 200, { ...headers, "content-type": JSON_CONTENT_TYPE }, Buffer.from(JSON.stringify(document)));
      return;
    }
    if (protocol === "cbor") {
      const document = shape === undefined || output === undefined ? {} : encodeCbor(shape, output);
      send(
        response,
        200,
        { ...headers, "content-type": CBOR_CONTENT_TYPE, "smithy-protocol": "rpc-v2-cbor" },
        Buffer.from(cbor.serialize(document)),
      );
      return;
    }
    const result =
      shape === undefined || output === undefined
        ? ""
        : `<${operation}Result>${encodeXml(shape, output)}</${operation}Result>`;
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?>\n<${operation}Response xmlns="${QUERY_XML_NAMESPACE}">${result}` +
      `<ResponseMetadata><RequestId>${request.requestId}</RequestId></ResponseMetadata></${operation}Response>`;
    send(response, 200, { ...headers, "content-type": "text/xml" }, Buffer.from(xml));
  }
}

function detectProtocol(request: ApiRequest): WireProtocol {
  if (request.path.startsWith(CBOR_PATH_PREFIX) || request.path.startsWith(`/service/${SERVICE_NAME}/`)) return "cbor";
  const target = request.raw.headers["x-amz-target"];
  if (typeof target === "string" && target.startsWith(JSON_TARGET_PREFIX)) return "json";
  return "query";
}

/**
 * Rejects names outside the model with each protocol's code (InvalidAction for
 * Query, UnknownOperationException otherwise, with status 404 for RPC v2
 * CBOR), and known but unbuilt operations with NotImplemented.
 */
function checkOperation(operation: string, protocol: WireProtocol): void {
  if (!ALL_OPERATIONS.has(operation)) {
    if (protocol === "query") throw cloudWatchErrors.invalidAction(operation);
    throw cloudWatchErrors.unknownOperation(protocol === "cbor" ? 404 : 400, operation);
  }
  if (OPERATIONS[operation] === undefined) throw cloudWatchErrors.notImplemented(operation);
}

/**
 * Checks the Query `Version`. AWS Query services look operations up by action
 * and version, so a request for another version gets InvalidAction ("Could
 * not find operation ... for version ..."). A missing Version gets
 * MissingParameter, the code of the AWS common errors for a required
 * parameter that is not supplied.
 * NOTE: the code CloudWatch itself returns for a missing Version was not
 * observed, so it follows the common errors list.
 */
function checkVersion(operation: string, version: string | undefined): void {
  if (version === undefined || version === "") throw cloudWatchErrors.missingParameter("Version");
  if (version !== API_VERSION) throw cloudWatchErrors.invalidAction(operation, version);
}

/** Undoes `Content-Encoding: gzip`, which SDKs apply to PutMetricData bodies (the requestCompression trait). */
function decompress(request: ApiRequest): Buffer {
  const body = request.body ?? Buffer.alloc(0);
  const encoding = String(request.raw.headers["content-encoding"] ?? "").trim().toLowerCase();
  if (encoding === "" || encoding === "identity") return body;
  if (encoding !== "gzip") {
    throw new ApiError("InvalidParameterValue", 400, `The Content-Encoding ${JSON.stringify(encoding)} is not supported; use gzip.`);
  }
  try {
    return gunzipSync(body, { maxOutputLength: MAX_BUFFERED_BODY_BYTES });
  } catch (error) {
    throw new ApiError("InvalidParameterValue", 400, "The request body is not valid gzip or is too large when decompressed.", {
      cause: error,
    });
  }
}

function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw cloudWatchErrors.serialization("The request body is not valid JSON.");
  }
}

function parseCborBody(body: Buffer): unknown {
  if (body.length === 0) return {};
  const bytes = new Uint8Array(body.buffer, body.byteOffset, body.length);
  try {
    checkCborItems(bytes);
  } catch (error) {
    if (!(error instanceof CborShapeError)) throw error;
    throw cloudWatchErrors.serialization(`The request body is not valid CBOR for this protocol: ${error.message}.`);
  }
  try {
    return cbor.deserialize(bytes);
  } catch {
    throw cloudWatchErrors.serialization("The request body is not valid CBOR.");
  }
}

/**
 * Reads the Query parameters where AWS Query services take them: from the
 * body of a POST with Content-Type application/x-www-form-urlencoded, or from
 * the query string of a GET (or of a POST without a body).
 * NOTE: the codes CloudWatch returns for another method or content type were
 * not observed; these follow HTTP's 405 and 415.
 */
function queryParams(request: ApiRequest, body: Buffer): Array<[string, string]> {
  if (request.method !== "GET" && request.method !== "POST") throw cloudWatchErrors.queryMethodNotAllowed(request.method);
  if (request.method === "POST" && body.length > 0) {
    const contentType = String(request.raw.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (contentType !== FORM_CONTENT_TYPE) throw cloudWatchErrors.queryUnsupportedMediaType(contentType);
    return [...new URLSearchParams(body.toString("utf8"))];
  }
  const queryStart = request.target.indexOf("?");
  return queryStart < 0 ? [] : [...new URLSearchParams(request.target.slice(queryStart + 1))];
}

function send(response: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): void {
  response.writeHead(status, { ...headers, "content-length": String(body.length) });
  response.end(body);
}
