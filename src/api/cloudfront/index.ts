import type { ServerResponse } from "node:http";
import type { ControlChannel } from "../../cluster/types.js";
import type { Logger } from "../../common/logger.js";
import { ControlPlane } from "../../control/index.js";
import { cloudFrontError } from "../../control/errors.js";
import type { ApiRequest, ProtocolService } from "../context.js";
import type { ApiError } from "../errors.js";
import { readOperationInput, writeOperationOutput } from "./bindings.js";
import { createHandlers, type OperationHandler } from "./handlers.js";
import { CLOUDFRONT_API_VERSION, matchRoute } from "./model.js";
import { CLOUDFRONT_XML_NAMESPACE, escapeXmlText } from "./xml.js";

export interface CloudFrontService extends ProtocolService {
  /** The control plane behind the API, for in-process readers such as the dashboard. */
  readonly control: ControlPlane;
  /** Starts deploy tracking and republishes every stored distribution to the bus. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface CloudFrontServiceOptions {
  dataDir: string;
  accountId: string;
  /** DNS zone of distribution domain names, such as `portico.localhost`. */
  zone: string;
  bus: ControlChannel;
  /** Returns whether the bucket store has a bucket of this name, for Logging.Bucket. */
  bucketExists(name: string): boolean;
  log: Logger;
}

/**
 * The CloudFront REST-XML API (version 2020-05-31): routes each request to
 * an operation of the SDK's model, decodes its input, runs it against the
 * control plane, and encodes its output.
 */
class CloudFrontApi implements CloudFrontService {
  private readonly handlers: Map<string, OperationHandler>;

  constructor(readonly control: ControlPlane) {
    this.handlers = createHandlers(control);
  }

  start(): Promise<void> {
    return this.control.start();
  }

  close(): Promise<void> {
    return this.control.close();
  }

  async handle(request: ApiRequest, response: ServerResponse): Promise<void> {
    const match = matchRoute(request.method, request.path, request.query);
    if (!match) {
      throw cloudFrontError(
        "InvalidRequest",
        `No CloudFront ${CLOUDFRONT_API_VERSION} operation matches ${request.method} ${request.path}.`,
      );
    }
    const handler = this.handlers.get(match.route.name);
    if (!handler) {
      throw cloudFrontError("NotImplemented", `The CloudFront operation ${match.route.name} is not implemented.`);
    }
    request.log.debug({ operation: match.route.name }, "CloudFront operation");
    const input = readOperationInput(match, request);
    const output = await handler(input, request);
    writeOperationOutput(match, output, request, response);
  }

  /** Writes CloudFront's `<ErrorResponse>` document. */
  renderError(error: ApiError, request: ApiRequest, response: ServerResponse): void {
    const type = error.status >= 500 ? "Receiver" : "Sender";
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<ErrorResponse xmlns="${CLOUDFRONT_XML_NAMESPACE}"><Error><Type>${type}</Type>` +
      `<Code>${escapeXmlText(error.code)}</Code><Message>${escapeXmlText(error.message)}</Message></Error>` +
      `<RequestId>${request.requestId}</RequestId></ErrorResponse>`;
    response.writeHead(error.status, {
      ...error.headers,
      "Content-Type": "text/xml",
      "Content-Length": String(Buffer.byteLength(body)),
      "x-amzn-RequestId": request.requestId,
    });
    response.end(body);
  }
}

/** Creates the CloudFront API service and the control plane behind it. */
export async function createCloudFrontService(options: CloudFrontServiceOptions): Promise<CloudFrontService> {
  const control = new ControlPlane(options);
  return new CloudFrontApi(control);
}
