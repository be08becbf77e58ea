/** The CloudFront service principal, as bucket policies name it. */
export const CLOUDFRONT_SERVICE_PRINCIPAL = "cloudfront.amazonaws.com";

/**
 * Header that carries the distribution ARN on origin requests signed with the
 * CloudFront service key. It is only trusted when it is among the signed
 * headers; the bucket policy evaluates it as `aws:SourceArn`.
 */
export const SOURCE_ARN_HEADER = "x-portico-source-arn";

/** The sender of a request, as its signature establishes it. */
export type Principal =
  | { type: "anonymous" }
  | { type: "root"; accessKeyId: string; accountId: string; arn: string }
  | {
      type: "user";
      accessKeyId: string;
      accountId: string;
      userName: string;
      /** The user's unique id (`AIDA...`), which a user re-created under the same name does not share. */
      userId: string;
      arn: string;
    }
  | {
      type: "service";
      service: typeof CLOUDFRONT_SERVICE_PRINCIPAL;
      accessKeyId: string;
      /** The distribution ARN that the request acts for, when signed. */
      sourceArn: string | undefined;
    };

/** A key that can sign requests, with the principal it stands for. */
export interface SigningKey {
  accessKeyId: string;
  secretAccessKey: string;
  principal: Exclude<Principal, { type: "anonymous" }>;
}

/** Looks up signing keys by access key id. */
export interface CredentialStore {
  lookup(accessKeyId: string): SigningKey | undefined;
}
