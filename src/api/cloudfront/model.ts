import * as cloudFrontModel from "@aws-sdk/client-cloudfront";
import { NormalizedSchema } from "@smithy/core/schema";

/** The API version that prefixes every CloudFront path. */
export const CLOUDFRONT_API_VERSION = "2020-05-31";

type SchemaReference = Parameters<typeof NormalizedSchema.of>[0];

/** One CloudFront operation with its HTTP binding, as the SDK's model declares it. */
export interface OperationRoute {
  name: string;
  method: string;
  /** Path segments; `{Name}` segments bind a label, `{Name+}` the rest of the path. */
  segments: string[];
  /** Literal query parameters the route requires, e.g. `WithTags` or `Operation=Tag`. */
  queryLiterals: Array<[string, string | undefined]>;
  successStatus: number;
  input: NormalizedSchema;
  output: NormalizedSchema;
}

/** A request matched to an operation, with its path labels percent-decoded. */
export interface RouteMatch {
  route: OperationRoute;
  labels: Record<string, string>;
}

function toRoute(name: string, schema: unknown[]): OperationRoute | undefined {
  const traits = schema[3] as { http?: [string, string, number] } | undefined;
  if (!traits?.http) return undefined;
  const [method, uri, successStatus] = traits.http;
  const [pathPart = "", queryPart] = uri.split("?", 2);
  const queryLiterals: Array<[string, string | undefined]> = [];
  for (const pair of (queryPart ?? "").split("&").filter(Boolean)) {
    const [key = "", value] = pair.split("=", 2);
    queryLiterals.push([key, value]);
  }
  return {
    name,
    method,
    segments: pathPart.split("/").filter(Boolean),
    queryLiterals,
    successStatus,
    input: NormalizedSchema.of(schema[4] as SchemaReference),
    output: NormalizedSchema.of(schema[5] as SchemaReference),
  };
}

/**
 * Reads every operation schema (`[9, namespace, name, { http }, input,
 * output]`) that the installed SDK exports, so the route table, the input
 * bindings and the output shapes all come from CloudFront's own model.
 */
function loadRoutes(): OperationRoute[] {
  const routes: OperationRoute[] = [];
  for (const [exportName, schema] of Object.entries(cloudFrontModel)) {
    if (!exportName.endsWith("$") || !Array.isArray(schema) || schema[0] !== 9) continue;
    const route = toRoute(exportName.slice(0, -1), schema as unknown[]);
    if (route) routes.push(route);
  }
  // A route with more literal segments and query literals is more specific:
  // `POST /distribution?WithTags` must win over `POST /distribution`.
  const specificity = (route: OperationRoute) =>
    route.queryLiterals.length * 100 + route.segments.filter((segment) => !segment.startsWith("{")).length;
  return routes.sort((a, b) => specificity(b) - specificity(a));
}

export const OPERATION_ROUTES: readonly OperationRoute[] = loadRoutes();

function matchSegments(route: OperationRoute, pathSegments: string[]): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  for (let index = 0; index < route.segments.length; index++) {
    const expected = route.segments[index]!;
    if (expected.startsWith("{") && expected.endsWith("+}")) {
      const rest = pathSegments.slice(index);
      if (rest.length === 0) return undefined;
      labels[expected.slice(1, -2)] = rest.map((segment) => decodeURIComponent(segment)).join("/");
      return labels;
    }
    const actual = pathSegments[index];
    if (actual === undefined) return undefined;
    if (expected.startsWith("{") && expected.endsWith("}")) {
      labels[expected.slice(1, -1)] = decodeURIComponent(actual);
    } else if (expected !== actual) {
      return undefined;
    }
  }
  return route.segments.length === pathSegments.length ? labels : undefined;
}

/** Finds the operation a request addresses, or undefined when none matches. */
export function matchRoute(method: string, path: string, query: Array<[string, string]>): RouteMatch | undefined {
  const pathSegments = path.split("/").filter(Boolean);
  for (const route of OPERATION_ROUTES) {
    if (route.method !== method) continue;
    const hasLiterals = route.queryLiterals.every(([key, value]) =>
      query.some(([queryKey, queryValue]) => queryKey === key && (value === undefined || queryValue === value)),
    );
    if (!hasLiterals) continue;
    let labels: Record<string, string> | undefined;
    try {
      labels = matchSegments(route, pathSegments);
    } catch {
      // A malformed percent-encoding in a label cannot name any resource.
      continue;
    }
    if (labels) return { route, labels };
  }
  return undefined;
}
