import type { ServerResponse } from "node:http";
import { XMLBuilder } from "fast-xml-parser";
import type { ApiRequest } from "../context.js";
import type { ApiError } from "../errors.js";
import { iamErrors } from "../../iam/errors.js";

/** The IAM API version this endpoint speaks, and its XML namespace. */
export const IAM_API_VERSION = "2010-05-08";
export const IAM_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/";

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';
const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: "@_", suppressEmptyNode: false });

/** The parameters of one Query request: the form body and the URL query, body first. */
export class QueryParameters {
  private readonly values = new Map<string, string>();

  constructor(request: ApiRequest) {
    // A form body decodes `+` as a space (application/x-www-form-urlencoded);
    // URLSearchParams applies that rule to the URL query as well, as the Query protocol expects.
    const queryStart = request.target.indexOf("?");
    const sources = [request.body?.toString("utf8") ?? "", queryStart < 0 ? "" : request.target.slice(queryStart + 1)];
    for (const source of sources) {
      for (const [name, value] of new URLSearchParams(source)) {
        if (!this.values.has(name)) this.values.set(name, value);
      }
    }
  }

  optional(name: string): string | undefined {
    return this.values.get(name);
  }

  /** Returns a required member, raising ValidationError in IAM's wording when it is missing. */
  required(name: string): string {
    const value = this.values.get(name);
    if (value === undefined) {
      const member = name.charAt(0).toLowerCase() + name.slice(1);
      throw iamErrors.validation(
        `1 validation error detected: Value null at '${member}' failed to satisfy constraint: Member must not be null`,
      );
    }
    return value;
  }

  /** Returns MaxItems: an integer from 1 to 1000, 100 when absent (IAM's default page size). */
  maxItems(): number {
    const text = this.values.get("MaxItems");
    if (text === undefined) return 100;
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < 1 || value > 1000) {
      throw iamErrors.validation(
        `1 validation error detected: Value '${text}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000`,
      );
    }
    return value;
  }

  /** Returns a Query list such as `Tags.member.1.Key`, `Tags.member.1.Value`, ... as records. */
  structureList(name: string, fields: string[]): Array<Record<string, string>> {
    const list: Array<Record<string, string>> = [];
    for (let index = 1; ; index++) {
      const prefix = `${name}.member.${index}.`;
      const entry: Record<string, string> = {};
      let present = false;
      for (const field of fields) {
        const value = this.values.get(prefix + field);
        if (value !== undefined) {
          entry[field] = value;
          present = true;
        }
      }
      if (!present) return list;
      list.push(entry);
    }
  }
}

/** Formats epoch milliseconds as IAM's ISO 8601 dateType, to the second. */
export function iamTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Sends `<{Action}Response><{Action}Result>...</{Action}Result><ResponseMetadata>...` */
export function sendResult(
  response: ServerResponse,
  request: ApiRequest,
  action: string,
  result: Record<string, unknown> | undefined,
): void {
  const content: Record<string, unknown> = { "@_xmlns": IAM_XMLNS };
  if (result !== undefined) content[`${action}Result`] = result;
  content.ResponseMetadata = { RequestId: request.requestId };
  const body = XML_DECLARATION + builder.build({ [`${action}Response`]: content });
  response.writeHead(200, { "content-type": "text/xml", "content-length": Buffer.byteLength(body) });
  response.end(body);
}

/** Sends IAM's `<ErrorResponse>` with the fault type, code and message. */
export function sendError(response: ServerResponse, request: ApiRequest, error: ApiError): void {
  const body =
    XML_DECLARATION +
    builder.build({
      ErrorResponse: {
        "@_xmlns": IAM_XMLNS,
        Error: { Type: error.status >= 500 ? "Receiver" : "Sender", Code: error.code, Message: error.message },
        RequestId: request.requestId,
      },
    });
  response.writeHead(error.status, {
    ...error.headers,
    "content-type": "text/xml",
    "content-length": Buffer.byteLength(body),
  });
  response.end(body);
}
