import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CreateCachePolicyCommand,
  CreateDistributionCommand,
  CreateOriginRequestPolicyCommand,
  CreateResponseHeadersPolicyCommand,
  DeleteCachePolicyCommand,
  GetCachePolicyCommand,
  GetCachePolicyConfigCommand,
  GetDistributionCommand,
  GetOriginRequestPolicyCommand,
  GetResponseHeadersPolicyCommand,
  ListCachePoliciesCommand,
  ListDistributionsByCachePolicyIdCommand,
  ListDistributionsByResponseHeadersPolicyIdCommand,
  ListOriginRequestPoliciesCommand,
  ListResponseHeadersPoliciesCommand,
  UpdateCachePolicyCommand,
  UpdateDistributionCommand,
  DeleteResponseHeadersPolicyCommand,
  type CachePolicyConfig,
} from "@aws-sdk/client-cloudfront";
import type { ClusterMessage, DistributionSnapshot } from "../../src/cluster/types.js";
import { errorName, s3DistributionConfig, startHarness } from "./harness.js";

const CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6";
const CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3";
const SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03";

function cachePolicyConfig(name: string, overrides: Partial<CachePolicyConfig> = {}): CachePolicyConfig {
  return {
    Name: name,
    Comment: "test policy",
    MinTTL: 5,
    DefaultTTL: 60,
    MaxTTL: 600,
    ParametersInCacheKeyAndForwardedToOrigin: {
      EnableAcceptEncodingGzip: true,
      EnableAcceptEncodingBrotli: false,
      HeadersConfig: { HeaderBehavior: "whitelist", Headers: { Quantity: 1, Items: ["Accept-Language"] } },
      CookiesConfig: { CookieBehavior: "none" },
      QueryStringsConfig: { QueryStringBehavior: "all" },
    },
    ...overrides,
  };
}

/** Policy-based behavior: no legacy ForwardedValues or TTLs. */
function policyBehavior(cachePolicyId: string, extra: Record<string, string> = {}) {
  return {
    TargetOriginId: "site-bucket",
    ViewerProtocolPolicy: "redirect-to-https" as const,
    CachePolicyId: cachePolicyId,
    ...extra,
  };
}

test("managed policies answer under their published ids", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const { client } = harness;

  const optimized = await client.send(new GetCachePolicyCommand({ Id: CACHING_OPTIMIZED }));
  const config = optimized.CachePolicy?.CachePolicyConfig;
  assert.equal(config?.Name, "Managed-CachingOptimized");
  assert.equal(config?.MinTTL, 1);
  assert.equal(config?.DefaultTTL, 86_400);
  assert.equal(config?.MaxTTL, 31_536_000);
  assert.equal(config?.ParametersInCacheKeyAndForwardedToOrigin?.EnableAcceptEncodingGzip, true);
  assert.ok(optimized.ETag);

  const disabled = await client.send(new GetCachePolicyConfigCommand({ Id: CACHING_DISABLED }));
  assert.equal(disabled.CachePolicyConfig?.MaxTTL, 0);
  assert.equal(disabled.CachePolicyConfig?.ParametersInCacheKeyAndForwardedToOrigin?.HeadersConfig?.HeaderBehavior, "none");

  const allViewer = await client.send(new GetOriginRequestPolicyCommand({ Id: ALL_VIEWER }));
  assert.equal(allViewer.OriginRequestPolicy?.OriginRequestPolicyConfig?.HeadersConfig?.HeaderBehavior, "allViewer");
  const security = await client.send(new GetResponseHeadersPolicyCommand({ Id: SECURITY_HEADERS }));
  const securityConfig = security.ResponseHeadersPolicy?.ResponseHeadersPolicyConfig?.SecurityHeadersConfig;
  assert.equal(securityConfig?.ContentTypeOptions?.Override, true);
  assert.equal(securityConfig?.FrameOptions?.FrameOption, "SAMEORIGIN");

  const managed = await client.send(new ListCachePoliciesCommand({ Type: "managed" }));
  const ids = managed.CachePolicyList?.Items?.map((item) => item.CachePolicy?.Id) ?? [];
  assert.ok(ids.includes(CACHING_OPTIMIZED));
  assert.ok(ids.includes(CACHING_DISABLED));
  assert.ok(managed.CachePolicyList?.Items?.every((item) => item.Type === "managed"));
  const origins = await client.send(new ListOriginRequestPoliciesCommand({ Type: "managed" }));
  assert.equal(origins.OriginRequestPolicyList?.Quantity, 8);
  const responses = await client.send(new ListResponseHeadersPoliciesCommand({}));
  assert.equal(responses.ResponseHeadersPolicyList?.Quantity, 5);

  assert.equal(
    await errorName(
      client.send(new UpdateCachePolicyCommand({ Id: CACHING_OPTIMIZED, IfMatch: optimized.ETag, CachePolicyConfig: config })),
    ),
    "AccessDenied",
  );
  assert.equal(
    await errorName(client.send(new DeleteCachePolicyCommand({ Id: CACHING_OPTIMIZED, IfMatch: optimized.ETag }))),
    "AccessDenied",
  );
  assert.equal(await errorName(client.send(new GetCachePolicyCommand({ Id: "no-such-policy" }))), "NoSuchCachePolicy");
});

test("custom cache policy lifecycle and checks", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const { client } = harness;

  const created = await client.send(new CreateCachePolicyCommand({ CachePolicyConfig: cachePolicyConfig("site-pages") }));
  const id = created.CachePolicy!.Id!;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.ok(created.Location?.endsWith(`/2020-05-31/cache-policy/${id}`));
  assert.equal(created.CachePolicy?.CachePolicyConfig?.DefaultTTL, 60);

  assert.equal(
    await errorName(client.send(new CreateCachePolicyCommand({ CachePolicyConfig: cachePolicyConfig("site-pages") }))),
    "CachePolicyAlreadyExists",
  );
  assert.equal(
    await errorName(
      client.send(new CreateCachePolicyCommand({ CachePolicyConfig: cachePolicyConfig("bad-ttl", { MinTTL: 700 }) })),
    ),
    "InvalidTTLOrder",
  );
  const emptyWhitelist = cachePolicyConfig("empty-list");
  emptyWhitelist.ParametersInCacheKeyAndForwardedToOrigin!.HeadersConfig = { HeaderBehavior: "whitelist", Headers: { Quantity: 0 } };
  assert.equal(
    await errorName(client.send(new CreateCachePolicyCommand({ CachePolicyConfig: emptyWhitelist }))),
    "InvalidArgument",
  );
  const keyedButDisabled = cachePolicyConfig("keyed-disabled", { MinTTL: 0, DefaultTTL: 0, MaxTTL: 0 });
  assert.equal(
    await errorName(client.send(new CreateCachePolicyCommand({ CachePolicyConfig: keyedButDisabled }))),
    "InvalidArgument",
  );
  const tooManyHeaders = cachePolicyConfig("many-headers");
  const headerNames = Array.from({ length: 11 }, (_, index) => `X-Header-${index}`);
  tooManyHeaders.ParametersInCacheKeyAndForwardedToOrigin!.HeadersConfig = {
    HeaderBehavior: "whitelist",
    Headers: { Quantity: headerNames.length, Items: headerNames },
  };
  assert.equal(
    await errorName(client.send(new CreateCachePolicyCommand({ CachePolicyConfig: tooManyHeaders }))),
    "TooManyHeadersInCachePolicy",
  );

  assert.equal(
    await errorName(
      client.send(new UpdateCachePolicyCommand({ Id: id, IfMatch: "EWRONG", CachePolicyConfig: cachePolicyConfig("site-pages") })),
    ),
    "PreconditionFailed",
  );
  const updated = await client.send(
    new UpdateCachePolicyCommand({ Id: id, IfMatch: created.ETag, CachePolicyConfig: cachePolicyConfig("site-pages", { MinTTL: 30 }) }),
  );
  assert.equal(updated.CachePolicy?.CachePolicyConfig?.MinTTL, 30);
  assert.notEqual(updated.ETag, created.ETag);

  const custom = await client.send(new ListCachePoliciesCommand({ Type: "custom" }));
  assert.deepEqual(custom.CachePolicyList?.Items?.map((item) => [item.Type, item.CachePolicy?.Id]), [["custom", id]]);

  // Paging walks managed then custom policies without repeats.
  const seen: string[] = [];
  let marker: string | undefined;
  do {
    const page = await client.send(new ListCachePoliciesCommand({ MaxItems: 3, ...(marker ? { Marker: marker } : {}) }));
    assert.ok((page.CachePolicyList?.Quantity ?? 0) <= 3);
    seen.push(...(page.CachePolicyList?.Items ?? []).map((item) => item.CachePolicy!.Id!));
    marker = page.CachePolicyList?.NextMarker;
  } while (marker);
  assert.equal(new Set(seen).size, seen.length);
  assert.ok(seen.includes(id));
  assert.ok(seen.includes(CACHING_OPTIMIZED));

  await client.send(new DeleteCachePolicyCommand({ Id: id, IfMatch: updated.ETag }));
  assert.equal(await errorName(client.send(new GetCachePolicyCommand({ Id: id }))), "NoSuchCachePolicy");
});

test("snapshots carry the named policies", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const { client } = harness;
  const snapshots: DistributionSnapshot[] = [];
  const membership = await harness.bus.join("edge-policies", async (message: ClusterMessage) => {
    if (message.type === "distribution.updated") snapshots.push(message.snapshot);
  });
  t.after(() => membership.leave());

  const policy = await client.send(new CreateCachePolicyCommand({ CachePolicyConfig: cachePolicyConfig("api-pages") }));
  const policyId = policy.CachePolicy!.Id!;
  const headers = await client.send(
    new CreateResponseHeadersPolicyCommand({
      ResponseHeadersPolicyConfig: {
        Name: "site-headers",
        CustomHeadersConfig: { Quantity: 1, Items: [{ Header: "X-Site", Value: "portico", Override: true }] },
      },
    }),
  );
  const headersId = headers.ResponseHeadersPolicy!.Id!;

  const base = s3DistributionConfig("policies-1");
  const config = {
    ...base,
    DefaultCacheBehavior: policyBehavior(CACHING_OPTIMIZED, { ResponseHeadersPolicyId: SECURITY_HEADERS }),
    CacheBehaviors: {
      Quantity: 1,
      Items: [
        {
          PathPattern: "/api/*",
          ...policyBehavior(policyId, { OriginRequestPolicyId: ALL_VIEWER, ResponseHeadersPolicyId: headersId }),
        },
      ],
    },
  };
  const created = await client.send(new CreateDistributionCommand({ DistributionConfig: config }));
  const distributionId = created.Distribution!.Id!;
  assert.equal(created.Distribution?.DistributionConfig?.DefaultCacheBehavior?.CachePolicyId, CACHING_OPTIMIZED);

  const waitForVersion = async (version: number) => {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const match = snapshots.find((snapshot) => snapshot.id === distributionId && snapshot.version === version);
      if (match) return match;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.fail(`no snapshot of version ${version} reached the edge`);
  };
  const first = await waitForVersion(1);
  assert.deepEqual(Object.keys(first.cachePolicies ?? {}).sort(), [CACHING_OPTIMIZED, policyId].sort());
  assert.equal(first.cachePolicies?.[policyId]?.MinTTL, 5);
  assert.equal(first.cachePolicies?.[CACHING_OPTIMIZED]?.MaxTTL, 31_536_000);
  assert.deepEqual(Object.keys(first.originRequestPolicies ?? {}), [ALL_VIEWER]);
  assert.deepEqual(Object.keys(first.responseHeadersPolicies ?? {}).sort(), [SECURITY_HEADERS, headersId].sort());
  assert.equal(first.responseHeadersPolicies?.[headersId]?.CustomHeadersConfig?.Items?.[0]?.Value, "portico");
  assert.equal(first.config.Logging?.Enabled, false);

  const byPolicy = await client.send(new ListDistributionsByCachePolicyIdCommand({ CachePolicyId: policyId }));
  assert.deepEqual(byPolicy.DistributionIdList?.Items, [distributionId]);
  const byManaged = await client.send(new ListDistributionsByCachePolicyIdCommand({ CachePolicyId: CACHING_OPTIMIZED }));
  assert.deepEqual(byManaged.DistributionIdList?.Items, [distributionId]);
  const byHeaders = await client.send(new ListDistributionsByResponseHeadersPolicyIdCommand({ ResponseHeadersPolicyId: headersId }));
  assert.equal(byHeaders.DistributionIdList?.Quantity, 1);
  const unused = await client.send(new ListDistributionsByCachePolicyIdCommand({ CachePolicyId: CACHING_DISABLED }));
  assert.equal(unused.DistributionIdList?.Quantity, 0);

  // Updating a named policy republishes the distribution with the new settings.
  const before = await client.send(new GetDistributionCommand({ Id: distributionId }));
  await client.send(
    new UpdateCachePolicyCommand({ Id: policyId, IfMatch: policy.ETag, CachePolicyConfig: cachePolicyConfig("api-pages", { MinTTL: 42, DefaultTTL: 90 }) }),
  );
  const second = await waitForVersion(2);
  assert.equal(second.cachePolicies?.[policyId]?.MinTTL, 42);
  const after = await client.send(new GetDistributionCommand({ Id: distributionId }));
  assert.equal(after.ETag, before.ETag);

  assert.equal(
    await errorName(client.send(new DeleteCachePolicyCommand({ Id: policyId, IfMatch: (await client.send(new GetCachePolicyCommand({ Id: policyId }))).ETag }))),
    "CachePolicyInUse",
  );
  assert.equal(
    await errorName(client.send(new DeleteResponseHeadersPolicyCommand({ Id: headersId, IfMatch: headers.ETag }))),
    "ResponseHeadersPolicyInUse",
  );

  const unknownPolicy = {
    ...config,
    DefaultCacheBehavior: policyBehavior("00000000-0000-0000-0000-000000000000"),
  };
  assert.equal(
    await errorName(client.send(new UpdateDistributionCommand({ Id: distributionId, IfMatch: after.ETag, DistributionConfig: unknownPolicy }))),
    "NoSuchCachePolicy",
  );
  const unknownOriginRequest = {
    ...config,
    DefaultCacheBehavior: policyBehavior(CACHING_OPTIMIZED, { OriginRequestPolicyId: "missing" }),
  };
  assert.equal(
    await errorName(
      client.send(new UpdateDistributionCommand({ Id: distributionId, IfMatch: after.ETag, DistributionConfig: unknownOriginRequest })),
    ),
    "NoSuchOriginRequestPolicy",
  );
  const mixed = {
    ...config,
    DefaultCacheBehavior: {
      ...policyBehavior(CACHING_OPTIMIZED),
      ForwardedValues: { QueryString: false, Cookies: { Forward: "none" as const } },
    },
  };
  assert.equal(
    await errorName(client.send(new UpdateDistributionCommand({ Id: distributionId, IfMatch: after.ETag, DistributionConfig: mixed }))),
    "InvalidArgument",
  );
});

test("origin request policy create and duplicate", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const { client } = harness;
  const config = {
    Name: "forward-language",
    HeadersConfig: { HeaderBehavior: "whitelist" as const, Headers: { Quantity: 1, Items: ["Accept-Language"] } },
    CookiesConfig: { CookieBehavior: "none" as const },
    QueryStringsConfig: { QueryStringBehavior: "all" as const },
  };
  const created = await client.send(new CreateOriginRequestPolicyCommand({ OriginRequestPolicyConfig: config }));
  assert.equal(created.OriginRequestPolicy?.OriginRequestPolicyConfig?.Name, "forward-language");
  assert.equal(
    await errorName(client.send(new CreateOriginRequestPolicyCommand({ OriginRequestPolicyConfig: config }))),
    "OriginRequestPolicyAlreadyExists",
  );
  const badBehavior = { ...config, Name: "bad", HeadersConfig: { HeaderBehavior: "sometimes" as never } };
  assert.equal(
    await errorName(client.send(new CreateOriginRequestPolicyCommand({ OriginRequestPolicyConfig: badBehavior }))),
    "InvalidArgument",
  );
});

test("header values reject CR, LF, padding", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const { client } = harness;
  const withCustomValue = (value: string) =>
    client.send(
      new CreateResponseHeadersPolicyCommand({
        ResponseHeadersPolicyConfig: {
          Name: `custom-${Buffer.from(value).toString("hex").slice(0, 40)}`,
          CustomHeadersConfig: { Quantity: 1, Items: [{ Header: "X-Site", Value: value, Override: true }] },
        },
      }),
    );
  // A CR LF would end the field on HTTP/1.1 and add one of its own. The others are malformed on HTTP/2.
  for (const value of ["a\r\nx-injected: yes", "a\nb", " padded", "padded ", "caf\u00e9", "snow \u2603", "nul\u0000"]) {
    assert.equal(await errorName(withCustomValue(value)), "InvalidArgument", JSON.stringify(value));
  }
  for (const value of ["", "portico", "a b\tc", "max-age=60, \"quoted\""]) {
    const created = await withCustomValue(value);
    assert.equal(created.ResponseHeadersPolicy?.ResponseHeadersPolicyConfig?.CustomHeadersConfig?.Items?.[0]?.Value, value);
  }

  const withCsp = await errorName(
    client.send(
      new CreateResponseHeadersPolicyCommand({
        ResponseHeadersPolicyConfig: {
          Name: "csp-newline",
          SecurityHeadersConfig: { ContentSecurityPolicy: { ContentSecurityPolicy: "default-src 'self'\r\nx-a: b", Override: true } },
        },
      }),
    ),
  );
  assert.equal(withCsp, "InvalidArgument");
  const withCorsOrigin = await errorName(
    client.send(
      new CreateResponseHeadersPolicyCommand({
        ResponseHeadersPolicyConfig: {
          Name: "cors-newline",
          CorsConfig: {
            AccessControlAllowOrigins: { Quantity: 1, Items: ["https://a.example\r\nx-a: b"] },
            AccessControlAllowHeaders: { Quantity: 1, Items: ["*"] },
            AccessControlAllowMethods: { Quantity: 1, Items: ["GET"] },
            AccessControlAllowCredentials: false,
            OriginOverride: true,
          },
        },
      }),
    ),
  );
  assert.equal(withCorsOrigin, "InvalidArgument");

  // An origin custom header goes into requests to the origin, where CR LF would split the request.
  const config = s3DistributionConfig("origin-header-newline");
  config.Origins.Items[0] = {
    ...config.Origins.Items[0]!,
    CustomHeaders: { Quantity: 1, Items: [{ HeaderName: "X-Origin-Secret", HeaderValue: "s\r\nGET /other HTTP/1.1" }] },
  } as (typeof config.Origins.Items)[0];
  assert.equal(await errorName(client.send(new CreateDistributionCommand({ DistributionConfig: config }))), "InvalidArgument");
  const listed = await client.send(new ListResponseHeadersPoliciesCommand({ Type: "custom" }));
  assert.equal(listed.ResponseHeadersPolicyList?.Items?.length, 4);
});
