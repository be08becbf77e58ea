import type { ServerResponse } from "node:http";
import { XMLBuilder, XMLParser, XMLValidator } from "fast-xml-parser";
import { ApiError } from "../errors.js";

export const S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/";
const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: "@_", suppressEmptyNode: false });

/** Elements that may repeat in request documents, always parsed as arrays. */
const REPEATED_ELEMENTS = new Set(["Part", "Object"]);

const parser = new XMLParser({
  ignoreAttributes: true,
  // Keys such as "0001" or " a " must reach the handler exactly as sent.
  parseTagValue: false,
  trimValues: false,
  isArray: (name) => REPEATED_ELEMENTS.has(name),
});

/** An XML element tree for the builder: nested objects, arrays for repeated elements. */
export type XmlTree = Record<string, unknown>;

/** Serialises one root element with the S3 namespace and the XML declaration. */
export function buildXml(root: string, content: XmlTree, withNamespace = true): string {
  const element = withNamespace ? { "@_xmlns": S3_XMLNS, ...content } : content;
  return XML_DECLARATION + builder.build({ [root]: element });
}

/** Sends an XML document with status 200 (or `status`). */
export function sendXml(response: ServerResponse, root: string, content: XmlTree, status = 200): void {
  const body = buildXml(root, content);
  response.writeHead(status, {
    "content-type": "application/xml",
    "content-length": Buffer.byteLength(body),
  });
  response.end(body);
}

export function malformedXml(): ApiError {
  return new ApiError(
    "MalformedXML",
    400,
    "The XML you provided was not well-formed or did not validate against our published schema",
  );
}

/** Parses a request document and returns the content of its root element, which must be `root`. */
export function parseXmlDocument(body: Buffer, root: string): Record<string, unknown> {
  const text = body.toString("utf8");
  if (text.trim() === "" || XMLValidator.validate(text) !== true) throw malformedXml();
  let document: Record<string, unknown>;
  try {
    document = parser.parse(text) as Record<string, unknown>;
  } catch {
    throw malformedXml();
  }
  const content = document[root];
  if (content === undefined) throw malformedXml();
  if (content === "") return {};
  if (typeof content !== "object" || content === null || Array.isArray(content)) throw malformedXml();
  return content as Record<string, unknown>;
}

/** Returns an element's text content, or undefined when absent or not text. */
export function textOf(parent: Record<string, unknown>, name: string): string | undefined {
  const value = parent[name];
  return typeof value === "string" ? value : undefined;
}

/** Formats epoch milliseconds as S3's ISO 8601 timestamps in XML (`2024-01-02T03:04:05.000Z`). */
export function isoTimestamp(ms: number): string {
  return new Date(ms).toISOString();
}
