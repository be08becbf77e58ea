import type { ServerResponse } from "node:http";
import type { ApiRequest } from "../context.js";
import type { ApiError } from "../errors.js";
import { buildXml } from "./xml.js";

/**
 * Writes an S3 error document: `<Error>` with Code, Message, the detail
 * elements, Resource and RequestId ("Error responses", Amazon S3 API
 * reference). HEAD responses carry no body, as in S3.
 */
export function renderS3Error(error: ApiError, request: ApiRequest, response: ServerResponse): void {
  const content: Record<string, string> = { Code: error.code, Message: error.message };
  for (const [name, value] of Object.entries(error.details)) {
    if (name === "Code" || name === "Message" || name === "Resource" || name === "RequestId") continue;
    content[name] = value;
  }
  content.Resource = request.path;
  content.RequestId = request.requestId;
  content.HostId = request.requestId;
  const body = buildXml("Error", content, false);
  const headers: Record<string, string | number> = {
    ...error.headers,
    "content-type": "application/xml",
    "x-amz-request-id": request.requestId,
    "x-amz-id-2": request.requestId,
  };
  // Unread body bytes would be parsed as the next request, and reading a large
  // or stalled body only to discard it wastes the connection, so close it.
  if (!request.raw.complete) headers.connection = "close";
  if (request.method === "HEAD") {
    response.writeHead(error.status, headers);
    response.end();
    return;
  }
  headers["content-length"] = Buffer.byteLength(body);
  response.writeHead(error.status, headers);
  response.end(body);
}
