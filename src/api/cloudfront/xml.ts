import { XmlShapeDeserializer, XmlShapeSerializer } from "@aws-sdk/core/protocols";
import { NormalizedSchema } from "@smithy/core/schema";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { cloudFrontError } from "../../control/errors.js";

export const CLOUDFRONT_XML_NAMESPACE = "http://cloudfront.amazonaws.com/doc/2020-05-31/";

/**
 * The largest CloudFront request document accepted. A distribution config
 * at CloudFront's default quotas (25 cache behaviors, 100 origins) stays
 * far below this size.
 */
export const MAX_XML_BODY_BYTES = 1024 * 1024;

/** Deepest element nesting accepted; a DistributionConfig nests about 8 levels. */
export const MAX_XML_DEPTH = 32;

/** The settings the SDK's restXml protocol uses for CloudFront. */
const CODEC_SETTINGS = {
  timestampFormat: { useTrait: true, default: 5 as const },
  httpBindings: true,
  xmlNamespace: CLOUDFRONT_XML_NAMESPACE,
  serviceNamespace: "com.amazonaws.cloudfront",
};

const TEXT_KEY = "#text";

// Entities stay undecoded here: the DOCTYPE check below rejects every
// declared entity, and decodeText expands only XML's predefined ones.
const parser = new XMLParser({
  ignoreAttributes: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  maxNestedTags: MAX_XML_DEPTH,
  textNodeName: TEXT_KEY,
});

const malformed = (message: string) => cloudFrontError("MalformedInput", message);

/** XML 1.0 section 4.6 predefined entities, plus character references. */
const PREDEFINED_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeText(text: string, path: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z][A-Za-z0-9]*);|&/g, (match, reference?: string) => {
    if (reference === undefined) throw malformed(`A bare '&' appears in ${path}; write it as &amp;.`);
    if (reference.startsWith("#")) {
      const codePoint = reference[1] === "x" ? parseInt(reference.slice(2), 16) : parseInt(reference.slice(1), 10);
      if (!Number.isInteger(codePoint) || codePoint < 1 || codePoint > 0x10ffff) {
        throw malformed(`The character reference ${match} in ${path} is not valid.`);
      }
      return String.fromCodePoint(codePoint);
    }
    const decoded = PREDEFINED_ENTITIES[reference];
    if (decoded === undefined) throw malformed(`The entity ${match} in ${path} is not defined.`);
    return decoded;
  });
}

/** Rejects invalid byte sequences instead of replacing them with U+FFFD. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses a request document into the plain tree that the SDK's XML
 * deserializer reads. Rejects documents that are not well-formed, that
 * declare a DOCTYPE (so no entity expansion and no external entity is ever
 * resolved), that nest deeper than MAX_XML_DEPTH, or that are too large.
 */
export function parseXmlDocument(body: Buffer, expectedRoot: string): unknown {
  if (body.length > MAX_XML_BODY_BYTES) {
    throw cloudFrontError("MalformedInput", `The request body is larger than ${MAX_XML_BODY_BYTES} bytes.`);
  }
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw malformed("The request body is not valid UTF-8.");
  }
  if (text.trim() === "") throw malformed(`The request body is empty; expected a ${expectedRoot} document.`);
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) {
    throw malformed("The request document declares a DOCTYPE or entities, which CloudFront does not accept.");
  }
  const validation = XMLValidator.validate(text);
  if (validation !== true) {
    throw malformed(`The request document is not well-formed XML: ${validation.err.msg} (line ${validation.err.line}).`);
  }

  let tree: Record<string, unknown>;
  try {
    tree = parser.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw malformed(`The request document could not be parsed: ${(error as Error).message}.`);
  }
  const roots = Object.keys(tree).filter((key) => key !== TEXT_KEY);
  if (roots.length !== 1 || roots[0] !== expectedRoot || Array.isArray(tree[expectedRoot])) {
    throw malformed(`The request document must have one root element ${expectedRoot}; found ${roots.join(", ") || "none"}.`);
  }
  checkNamespace(text, expectedRoot);
  return tree[expectedRoot];
}

/**
 * Rejects a root element whose default namespace is not CloudFront's 2020-05-31
 * one, since elements of another namespace are not CloudFront's elements even
 * when their local names match. A root without a namespace is accepted.
 */
function checkNamespace(text: string, expectedRoot: string): void {
  const startTag = new RegExp(`<${expectedRoot}(\\s[^>]*)?/?>`).exec(text);
  const namespace = /\sxmlns\s*=\s*(["'])(.*?)\1/.exec(startTag?.[1] ?? "")?.[2];
  if (namespace !== undefined && namespace !== CLOUDFRONT_XML_NAMESPACE) {
    throw malformed(
      `The element ${expectedRoot} is in namespace '${namespace}'; expected '${CLOUDFRONT_XML_NAMESPACE}'.`,
    );
  }
}

/**
 * Lists the XML names of a structure's required members. The SDK's static struct
 * schema is `[3, namespace, name, traits, memberNames, memberSchemas,
 * requiredCount]`, with the required members listed first.
 */
function requiredMembers(schema: NormalizedSchema): string[] {
  const definition = schema.getSchema() as unknown as unknown[];
  const requiredCount = typeof definition[6] === "number" ? definition[6] : 0;
  const names: string[] = [];
  for (const [memberName, memberSchema] of schema.structIterator()) {
    if (names.length >= requiredCount) break;
    names.push(memberSchema.getMemberTraits().xmlName ?? memberName);
  }
  return names;
}

function isBlank(value: unknown): boolean {
  return typeof value === "string" && value.trim() === "";
}

/**
 * Checks a parsed document against the model's shape: every element must be
 * a member of its parent, appear once unless it is a list item, and hold a
 * value of the member's type. The SDK deserializer skips unknown elements,
 * but CloudFront rejects them, so this runs first. Text is decoded in place.
 */
function checkShape(schema: NormalizedSchema, value: unknown, path: string): unknown {
  if (schema.isStructSchema()) {
    if (isBlank(value)) return "";
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw malformed(`The element ${path} must contain child elements, not text.`);
    }
    const members = new Map<string, [string, NormalizedSchema]>();
    for (const [memberName, memberSchema] of schema.structIterator()) {
      members.set(memberSchema.getMemberTraits().xmlName ?? memberName, [memberName, memberSchema]);
    }
    const checked: Record<string, unknown> = {};
    for (const [elementName, child] of Object.entries(value)) {
      if (elementName === TEXT_KEY) {
        if (!isBlank(child)) throw malformed(`The element ${path} contains unexpected text.`);
        continue;
      }
      const member = members.get(elementName);
      if (member === undefined) throw malformed(`Unexpected element ${elementName} in ${path}.`);
      if (Array.isArray(child)) throw malformed(`The element ${path}.${elementName} appears more than once.`);
      checked[elementName] = checkShape(member[1], child, `${path}.${elementName}`);
    }
    for (const requiredName of requiredMembers(schema)) {
      if (!(requiredName in checked)) {
        throw cloudFrontError("InvalidArgument", `The required element ${path}.${requiredName} is missing.`);
      }
    }
    return checked;
  }

  if (schema.isListSchema()) {
    if (isBlank(value)) return "";
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw malformed(`The list ${path} must contain child elements, not text.`);
    }
    const itemSchema = schema.getValueSchema();
    const itemName = itemSchema.getMergedTraits().xmlName ?? "member";
    const checked: unknown[] = [];
    for (const [elementName, child] of Object.entries(value)) {
      if (elementName === TEXT_KEY) {
        if (!isBlank(child)) throw malformed(`The list ${path} contains unexpected text.`);
        continue;
      }
      if (elementName !== itemName) {
        throw malformed(`Unexpected element ${elementName} in ${path}; its items are ${itemName} elements.`);
      }
      for (const item of Array.isArray(child) ? child : [child]) {
        checked.push(checkShape(itemSchema, item, `${path}.${itemName}`));
      }
    }
    return { [itemName]: checked };
  }

  if (typeof value !== "string") throw malformed(`The element ${path} must contain text, not child elements.`);
  const text = decodeText(value, path);
  if (schema.isBooleanSchema() && text !== "true" && text !== "false") {
    throw malformed(`The element ${path} must be true or false, not '${text}'.`);
  }
  if (schema.isNumericSchema() && !/^-?\d{1,15}$/.test(text.trim())) {
    throw malformed(`The element ${path} must be an integer, not '${text}'.`);
  }
  if (schema.isTimestampSchema() && Number.isNaN(Date.parse(text))) {
    throw malformed(`The element ${path} must be a timestamp, not '${text}'.`);
  }
  return text;
}

/**
 * Reads a request payload into the SDK's input shape: parse safely, check
 * the structure against the model, then let the SDK deserializer convert it.
 */
export function readXmlPayload(memberSchema: NormalizedSchema, body: Buffer): unknown {
  const traits = memberSchema.getMergedTraits();
  const rootName = traits.xmlName ?? memberSchema.getName() ?? memberSchema.getMemberName();
  const tree = parseXmlDocument(body, rootName);
  const checked = checkShape(memberSchema, tree, rootName);
  const deserializer = new XmlShapeDeserializer(CODEC_SETTINGS);
  return deserializer.readSchema(memberSchema, checked);
}

/** Writes a response payload with the SDK serializer, with CloudFront's namespace. */
export function writeXmlPayload(memberSchema: NormalizedSchema, value: unknown): string {
  const serializer = new XmlShapeSerializer(CODEC_SETTINGS);
  serializer.write(memberSchema, value);
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + String(serializer.flush());
}

/** Escapes text for an XML element body. */
export function escapeXmlText(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
