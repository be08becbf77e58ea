import type { ServerResponse } from "node:http";
import type { NormalizedSchema } from "@smithy/core/schema";
import type { ApiRequest } from "../context.js";
import { cloudFrontError } from "../../control/errors.js";
import type { RouteMatch } from "./model.js";
import { readXmlPayload, writeXmlPayload } from "./xml.js";

function convertScalar(schema: NormalizedSchema, text: string, where: string): unknown {
  if (schema.isNumericSchema()) {
    if (!/^-?\d{1,15}$/.test(text)) throw cloudFrontError("InvalidArgument", `${where} must be an integer, not '${text}'.`);
    return Number(text);
  }
  if (schema.isBooleanSchema()) {
    if (text !== "true" && text !== "false") {
      throw cloudFrontError("InvalidArgument", `${where} must be true or false, not '${text}'.`);
    }
    return text === "true";
  }
  return text;
}

/**
 * Builds an operation's input from the request, member by member, following
 * the model's HTTP bindings: path labels, query parameters, headers and the
 * XML payload.
 */
export function readOperationInput(match: RouteMatch, request: ApiRequest): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [memberName, memberSchema] of match.route.input.structIterator()) {
    const traits = memberSchema.getMergedTraits();
    if (traits.httpLabel) {
      const label = match.labels[memberName];
      if (label !== undefined) input[memberName] = label;
    } else if (typeof traits.httpQuery === "string") {
      const entry = request.query.find(([key]) => key === traits.httpQuery);
      if (entry) input[memberName] = convertScalar(memberSchema, entry[1], `The query parameter ${traits.httpQuery}`);
    } else if (typeof traits.httpHeader === "string") {
      const value = request.raw.headers[traits.httpHeader.toLowerCase()];
      if (typeof value === "string") input[memberName] = convertScalar(memberSchema, value, `The header ${traits.httpHeader}`);
    } else if (traits.httpPayload) {
      input[memberName] = readXmlPayload(memberSchema, request.body ?? Buffer.alloc(0));
    }
  }
  return input;
}

/** Writes an operation's output: header members as headers, the payload member as XML. */
export function writeOperationOutput(
  match: RouteMatch,
  output: Record<string, unknown>,
  request: ApiRequest,
  response: ServerResponse,
): void {
  const headers: Record<string, string> = { "x-amzn-RequestId": request.requestId };
  let body = "";
  for (const [memberName, memberSchema] of match.route.output.structIterator()) {
    const value = output[memberName];
    if (value === undefined || value === null) continue;
    const traits = memberSchema.getMergedTraits();
    if (typeof traits.httpHeader === "string") {
      headers[traits.httpHeader] = String(value);
    } else if (traits.httpPayload) {
      body = writeXmlPayload(memberSchema, value);
      headers["Content-Type"] = "text/xml";
    }
  }
  headers["Content-Length"] = String(Buffer.byteLength(body));
  response.writeHead(match.route.successStatus, headers);
  response.end(body);
}
