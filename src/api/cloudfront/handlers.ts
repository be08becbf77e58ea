import type {
  CachePolicyConfig,
  DistributionConfig,
  DistributionConfigWithTags,
  InvalidationBatch,
  OriginAccessControlConfig,
  OriginRequestPolicyConfig,
  ResponseHeadersPolicyConfig,
  TagKeys,
  Tags,
} from "@aws-sdk/client-cloudfront";
import type { ControlPlane } from "../../control/index.js";
import type { PolicyService } from "../../control/policies.js";
import type { ApiRequest } from "../context.js";
import { CLOUDFRONT_API_VERSION } from "./model.js";

/** An operation's input and output, shaped as the SDK's model names their members. */
export type OperationInput = Record<string, unknown>;
export type OperationOutput = Record<string, unknown>;
export type OperationHandler = (input: OperationInput, request: ApiRequest) => Promise<OperationOutput>;

/** Builds the URL of a created resource on the endpoint that the client called. */
function locationOf(request: ApiRequest, resourcePath: string): string {
  const host = request.raw.headers.host ?? "localhost";
  return `${request.secure ? "https" : "http"}://${host}/${CLOUDFRONT_API_VERSION}/${resourcePath}`;
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");
const optionalText = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const optionalNumber = (value: unknown): number | undefined => (typeof value === "number" ? value : undefined);

/**
 * Builds the handlers of one policy kind: Create<Resource>, Get<Resource>,
 * Get<Resource>Config, Update<Resource>, Delete<Resource>, List<Resource>s
 * (spelt ListCachePolicies and so on) and ListDistributionsBy<Resource>Id.
 */
function policyHandlers<Config extends { Name?: string | undefined }>(
  resource: "CachePolicy" | "OriginRequestPolicy" | "ResponseHeadersPolicy",
  service: PolicyService<Config>,
  locationSegment: string,
): Record<string, OperationHandler> {
  const configMember = `${resource}Config`;
  const plural = `${resource.slice(0, -"Policy".length)}Policies`;
  return {
    [`Create${resource}`]: async (input, request) => {
      const { policy, etag } = service.create(input[configMember] as Config);
      return { [resource]: policy, ETag: etag, Location: locationOf(request, `${locationSegment}/${String(policy.Id)}`) };
    },
    [`Get${resource}`]: async (input) => {
      const { policy, etag } = service.get(text(input.Id));
      return { [resource]: policy, ETag: etag };
    },
    [`Get${resource}Config`]: async (input) => {
      const { policy, etag } = service.get(text(input.Id));
      return { [configMember]: policy[configMember], ETag: etag };
    },
    [`Update${resource}`]: async (input) => {
      const { policy, etag } = await service.update(text(input.Id), input[configMember] as Config, optionalText(input.IfMatch));
      return { [resource]: policy, ETag: etag };
    },
    [`Delete${resource}`]: async (input) => {
      service.delete(text(input.Id), optionalText(input.IfMatch));
      return {};
    },
    [`List${plural}`]: async (input) => ({
      [`${resource}List`]: service.list(optionalText(input.Type), optionalText(input.Marker), optionalNumber(input.MaxItems)),
    }),
    [`ListDistributionsBy${resource}Id`]: async (input) => ({
      DistributionIdList: service.distributionIdList(
        text(input[`${resource}Id`]),
        optionalText(input.Marker),
        optionalNumber(input.MaxItems),
      ),
    }),
  };
}

/** Maps each built operation, by its AWS name, to its handler. The service rejects every other operation with NotImplemented. */
export function createHandlers(control: ControlPlane): Map<string, OperationHandler> {
  const { distributions, originAccessControls, invalidations, tags } = control;
  const handlers: Record<string, OperationHandler> = {
    ...policyHandlers<CachePolicyConfig>("CachePolicy", control.cachePolicies, "cache-policy"),
    ...policyHandlers<OriginRequestPolicyConfig>("OriginRequestPolicy", control.originRequestPolicies, "origin-request-policy"),
    ...policyHandlers<ResponseHeadersPolicyConfig>(
      "ResponseHeadersPolicy",
      control.responseHeadersPolicies,
      "response-headers-policy",
    ),
    CreateOriginAccessControl: async (input, request) => {
      const { originAccessControl, etag } = originAccessControls.create(
        input.OriginAccessControlConfig as OriginAccessControlConfig,
      );
      return {
        OriginAccessControl: originAccessControl,
        ETag: etag,
        Location: locationOf(request, `origin-access-control/${originAccessControl.Id}`),
      };
    },
    GetOriginAccessControl: async (input) => {
      const { originAccessControl, etag } = originAccessControls.get(text(input.Id));
      return { OriginAccessControl: originAccessControl, ETag: etag };
    },
    GetOriginAccessControlConfig: async (input) => {
      const { config, etag } = originAccessControls.getConfig(text(input.Id));
      return { OriginAccessControlConfig: config, ETag: etag };
    },
    UpdateOriginAccessControl: async (input) => {
      const { originAccessControl, etag } = await originAccessControls.update(
        text(input.Id),
        input.OriginAccessControlConfig as OriginAccessControlConfig,
        optionalText(input.IfMatch),
      );
      return { OriginAccessControl: originAccessControl, ETag: etag };
    },
    DeleteOriginAccessControl: async (input) => {
      originAccessControls.delete(text(input.Id), optionalText(input.IfMatch));
      return {};
    },
    ListOriginAccessControls: async (input) => ({
      OriginAccessControlList: originAccessControls.list(optionalText(input.Marker), optionalNumber(input.MaxItems)),
    }),

    CreateDistribution: async (input, request) => {
      const { distribution, etag } = await distributions.create(input.DistributionConfig as DistributionConfig);
      return {
        Distribution: distribution,
        ETag: etag,
        Location: locationOf(request, `distribution/${distribution.Id}`),
      };
    },
    CreateDistributionWithTags: async (input, request) => {
      const withTags = input.DistributionConfigWithTags as DistributionConfigWithTags;
      const { distribution, etag } = await distributions.create(
        withTags.DistributionConfig as DistributionConfig,
        withTags.Tags?.Items ?? [],
      );
      return {
        Distribution: distribution,
        ETag: etag,
        Location: locationOf(request, `distribution/${distribution.Id}`),
      };
    },
    GetDistribution: async (input) => {
      const { distribution, etag } = distributions.get(text(input.Id));
      return { Distribution: distribution, ETag: etag };
    },
    GetDistributionConfig: async (input) => {
      const { config, etag } = distributions.getConfig(text(input.Id));
      return { DistributionConfig: config, ETag: etag };
    },
    UpdateDistribution: async (input) => {
      const { distribution, etag } = await distributions.update(
        text(input.Id),
        input.DistributionConfig as DistributionConfig,
        optionalText(input.IfMatch),
      );
      return { Distribution: distribution, ETag: etag };
    },
    DeleteDistribution: async (input) => {
      await distributions.delete(text(input.Id), optionalText(input.IfMatch));
      return {};
    },
    ListDistributions: async (input) => ({
      DistributionList: distributions.list(optionalText(input.Marker), optionalNumber(input.MaxItems)),
    }),

    CreateInvalidation: async (input, request) => {
      const distributionId = text(input.DistributionId);
      const invalidation = await invalidations.create(distributionId, input.InvalidationBatch as InvalidationBatch);
      return {
        Invalidation: invalidation,
        Location: locationOf(request, `distribution/${distributionId}/invalidation/${invalidation.Id}`),
      };
    },
    GetInvalidation: async (input) => ({
      Invalidation: invalidations.get(text(input.DistributionId), text(input.Id)),
    }),
    ListInvalidations: async (input) => ({
      InvalidationList: invalidations.list(
        text(input.DistributionId),
        optionalText(input.Marker),
        optionalNumber(input.MaxItems),
      ),
    }),

    TagResource: async (input) => {
      tags.tag(text(input.Resource), (input.Tags as Tags | undefined)?.Items ?? []);
      return {};
    },
    UntagResource: async (input) => {
      tags.untag(text(input.Resource), (input.TagKeys as TagKeys | undefined)?.Items ?? []);
      return {};
    },
    ListTagsForResource: async (input) => ({ Tags: { Items: tags.list(text(input.Resource)) } }),
  };
  return new Map(Object.entries(handlers));
}
