import { tag } from "@smithy/core/cbor";
import { ApiError } from "../errors.js";
import { cloudWatchErrors } from "./errors.js";
import type { Shape } from "./shapes.js";

/**
 * Decoded input and output values: plain objects keyed by member name, with
 * timestamps as epoch milliseconds. Each protocol converts at its boundary.
 */
export type Value = string | number | boolean | Value[] | { [member: string]: Value } | undefined;
export type Struct = { [member: string]: Value };

/** The form in which a protocol's document carries values. */
export type DocumentProtocol = "json" | "cbor";

/** A double in the Query protocol's decimal notation, with an optional exponent. */
const DECIMAL_DOUBLE = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const DOUBLE_WORDS: ReadonlySet<string> = new Set(["NaN", "Infinity", "-Infinity"]);

// ---------------------------------------------------------------- JSON and CBOR input

/**
 * Checks a parsed JSON or CBOR request body against the operation's input
 * shape and converts it. The body must be a JSON object or a CBOR map, as
 * the awsJson1_0 and rpcv2Cbor protocols serialize an input structure, so
 * `null`, arrays and scalars raise SerializationException.
 */
export function decodeDocumentInput(shape: Shape, body: unknown, protocol: DocumentProtocol): Struct {
  if (!isPlainObject(body)) {
    const container = protocol === "json" ? "a JSON object" : "a CBOR map";
    throw cloudWatchErrors.serialization(`The request body must be ${container} of the input members, not ${describeValue(body)}.`);
  }
  return decodeDocument(shape, body, "", protocol) as Struct;
}

/**
 * Checks a parsed JSON or CBOR document against `shape` and converts it.
 * Type mismatches raise SerializationException, the code AWS JSON services
 * use, and missing required members raise MissingParameter. A null member
 * counts as absent, but a null list item or map value is a mismatch, because
 * the CloudWatch model has no sparse lists or maps.
 */
export function decodeDocument(shape: Shape, value: unknown, path: string, protocol: DocumentProtocol): Value {
  if (value === null || value === undefined) return undefined;
  const mismatch = (expected: string): ApiError =>
    cloudWatchErrors.serialization(`Member ${path || "(body)"} must be ${expected}.`);
  switch (shape.type) {
    case "string":
      if (typeof value !== "string") throw mismatch("a string");
      return value;
    case "boolean":
      if (typeof value !== "boolean") throw mismatch("a boolean");
      return value;
    case "integer":
      if (typeof value === "bigint") return Number(value);
      if (typeof value !== "number" || !Number.isInteger(value)) throw mismatch("an integer");
      return value;
    case "double":
      if (typeof value === "bigint") return Number(value);
      if (typeof value !== "number") throw mismatch("a number");
      return value;
    case "timestamp":
      return decodeDocumentTimestamp(value, protocol, mismatch);
    case "list": {
      if (!Array.isArray(value)) throw mismatch("a list");
      return value.map((item, index) => decodeItem(shape.member, item, `${path}.member.${index + 1}`, protocol));
    }
    case "map": {
      if (!isPlainObject(value)) throw mismatch("a map");
      const out: Struct = {};
      for (const [key, item] of Object.entries(value)) out[key] = decodeItem(shape.value, item, `${path}.${key}`, protocol);
      return out;
    }
    case "structure": {
      if (!isPlainObject(value)) throw mismatch("a structure");
      const out: Struct = {};
      for (const [name, member] of Object.entries(shape.members)) {
        const decoded = decodeDocument(member, value[name], joinPath(path, name), protocol);
        if (decoded !== undefined) out[name] = decoded;
      }
      checkRequired(shape.required, out, path);
      return out;
    }
  }
}

/**
 * Decodes a timestamp as each protocol serializes it: rpcv2Cbor as tag 1
 * around epoch seconds, awsJson1_0 as a number of epoch seconds (its default
 * timestamp format, which the CloudWatch model does not change). Strings,
 * and untagged CBOR numbers, are mismatches in both.
 */
function decodeDocumentTimestamp(value: unknown, protocol: DocumentProtocol, mismatch: (expected: string) => ApiError): number {
  let raw = value;
  if (protocol === "cbor") {
    if (!isPlainObject(raw) || (raw as { tag?: unknown }).tag !== 1) throw mismatch("a timestamp: CBOR tag 1 around epoch seconds");
    raw = (raw as { value: unknown }).value;
  }
  if (typeof raw === "bigint") raw = Number(raw);
  if (typeof raw === "number" && Number.isFinite(raw)) return Math.round(raw * 1000);
  throw mismatch(protocol === "cbor" ? "a timestamp: CBOR tag 1 around epoch seconds" : "a timestamp in epoch seconds (a number)");
}

/** Decodes a list item or map value, which must not be null. */
function decodeItem(shape: Shape, item: unknown, path: string, protocol: DocumentProtocol): Value {
  if (item === null || item === undefined) throw cloudWatchErrors.serialization(`Member ${path} must not be null.`);
  return decodeDocument(shape, item, path, protocol);
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Uint8Array) return "a byte string";
  return `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function joinPath(path: string, name: string): string {
  return path === "" ? name : `${path}.${name}`;
}

function checkRequired(required: readonly string[] | undefined, out: Struct, path: string): void {
  for (const name of required ?? []) {
    if (out[name] === undefined) throw cloudWatchErrors.missingParameter(joinPath(path, name));
  }
}

/** Parses a Query timestamp: ISO 8601 (with or without fraction) or epoch seconds; undefined when neither. */
export function parseTimestampString(text: string): number | undefined {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

// ---------------------------------------------------------------- Query input

interface FormNode {
  value: string | undefined;
  children: Map<string, FormNode>;
}

/** Builds a tree from dotted Query parameter names: `MetricData.member.1.Value`. */
export function buildFormTree(params: Iterable<[string, string]>): FormNode {
  const root: FormNode = { value: undefined, children: new Map() };
  for (const [name, value] of params) {
    let node = root;
    for (const part of name.split(".")) {
      let child = node.children.get(part);
      if (child === undefined) {
        child = { value: undefined, children: new Map() };
        node.children.set(part, child);
      }
      node = child;
    }
    node.value = value;
  }
  return root;
}

/**
 * Decodes the awsQuery form of `shape`: members as `Name`, list items as
 * `Name.member.N` (N from 1), map entries as `Name.entry.N.key` and
 * `Name.entry.N.value`, and an empty list as `Name=`.
 */
export function decodeForm(shape: Shape, node: FormNode | undefined, path: string): Value {
  if (node === undefined) return undefined;
  const invalid = (): ApiError =>
    cloudWatchErrors.invalidParameterValue(`The value ${JSON.stringify(node.value ?? "")} for parameter ${path} is invalid.`);
  switch (shape.type) {
    case "string":
      return node.value;
    case "boolean":
      if (node.value === undefined) return undefined;
      if (node.value !== "true" && node.value !== "false") throw invalid();
      return node.value === "true";
    case "integer":
      if (node.value === undefined) return undefined;
      if (!/^-?\d+$/.test(node.value)) throw invalid();
      return Number(node.value);
    case "double": {
      if (node.value === undefined) return undefined;
      // Decimal notation only: Number() would also take hex, octal, binary and padded forms.
      if (!DECIMAL_DOUBLE.test(node.value) && !DOUBLE_WORDS.has(node.value)) throw invalid();
      return Number(node.value);
    }
    case "timestamp": {
      if (node.value === undefined) return undefined;
      const ms = parseTimestampString(node.value);
      if (ms === undefined) throw invalid();
      return ms;
    }
    case "list": {
      const members = node.children.get("member");
      if (members === undefined) return node.value !== undefined ? [] : undefined;
      return indexedChildren(members, `${path}.member`).map(([index, child]) =>
        decodeForm(shape.member, child, `${path}.member.${index}`),
      );
    }
    case "map": {
      const entries = node.children.get("entry");
      const out: Struct = {};
      if (entries === undefined) return out;
      for (const [index, entry] of indexedChildren(entries, `${path}.entry`)) {
        const key = entry.children.get("key")?.value;
        if (key === undefined) throw cloudWatchErrors.missingParameter(`${path}.entry.${index}.key`);
        out[key] = decodeForm(shape.value, entry.children.get("value"), `${path}.entry.${index}.value`);
      }
      return out;
    }
    case "structure": {
      const out: Struct = {};
      for (const [name, member] of Object.entries(shape.members)) {
        const decoded = decodeForm(member, node.children.get(name), joinPath(path, name));
        if (decoded !== undefined) out[name] = decoded;
      }
      checkRequired(shape.required, out, path);
      return out;
    }
  }
}

/** The largest list index a Query parameter name may carry, far above the longest list of the model (1,000 items). */
const MAX_QUERY_INDEX = 9_999_999;

function indexedChildren(node: FormNode, path: string): Array<[number, FormNode]> {
  const items: Array<[number, FormNode]> = [];
  for (const [key, child] of node.children) {
    if (!/^[1-9]\d*$/.test(key)) {
      throw cloudWatchErrors.invalidParameterValue(`The index ${JSON.stringify(key)} in ${path} is not a positive integer.`);
    }
    if (key.length > String(MAX_QUERY_INDEX).length || Number(key) > MAX_QUERY_INDEX) {
      throw cloudWatchErrors.invalidParameterValue(`The index ${key} in ${path} is too large; indexes run from 1 to ${MAX_QUERY_INDEX}.`);
    }
    items.push([Number(key), child]);
  }
  return items.sort(([a], [b]) => a - b);
}

// ---------------------------------------------------------------- output

/** Converts an output value to its JSON form (timestamps as epoch seconds). */
export function encodeJson(shape: Shape, value: Value): unknown {
  return encodeDocument(shape, value, (ms) => ms / 1000);
}

/** Converts an output value to its CBOR form (timestamps as tag 1 around epoch seconds). */
export function encodeCbor(shape: Shape, value: Value): unknown {
  return encodeDocument(shape, value, (ms) => tag({ tag: 1, value: ms / 1000 }));
}

function encodeDocument(shape: Shape, value: Value, timestamp: (ms: number) => unknown): unknown {
  if (value === undefined) return undefined;
  switch (shape.type) {
    case "timestamp":
      return timestamp(value as number);
    case "list":
      return (value as Value[]).map((item) => encodeDocument(shape.member, item, timestamp));
    case "map": {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value as Struct)) out[key] = encodeDocument(shape.value, item, timestamp);
      return out;
    }
    case "structure": {
      const out: Record<string, unknown> = {};
      for (const [name, member] of Object.entries(shape.members)) {
        const encoded = encodeDocument(member, (value as Struct)[name], timestamp);
        if (encoded !== undefined) out[name] = encoded;
      }
      return out;
    }
    default:
      return value;
  }
}

/** Writes an output value as awsQuery XML elements: lists as `<member>`, maps as `<entry>`. */
export function encodeXml(shape: Shape, value: Value): string {
  if (value === undefined) return "";
  switch (shape.type) {
    case "timestamp":
      return new Date(value as number).toISOString();
    case "double":
    case "integer":
      return formatNumber(value as number);
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return escapeXml(value as string);
    case "list":
      return (value as Value[]).map((item) => `<member>${encodeXml(shape.member, item)}</member>`).join("");
    case "map":
      return Object.entries(value as Struct)
        .map(([key, item]) => `<entry><key>${escapeXml(key)}</key><value>${encodeXml(shape.value, item)}</value></entry>`)
        .join("");
    case "structure": {
      let out = "";
      for (const [name, member] of Object.entries(shape.members)) {
        const item = (value as Struct)[name];
        if (item === undefined) continue;
        out += `<${name}>${encodeXml(member, item)}</${name}>`;
      }
      return out;
    }
  }
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "Infinity";
  if (value === -Infinity) return "-Infinity";
  return String(value);
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
