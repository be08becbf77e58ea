import type { Tag } from "@aws-sdk/client-cloudfront";
import type { ControlContext } from "./context.js";
import { cloudFrontError } from "./errors.js";

/** CloudFront tag limits (CloudFront Developer Guide, "Tagging distributions"). */
const MAX_TAGS_PER_RESOURCE = 50;
const TAG_CHARACTERS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

export function validateTags(tags: Tag[]): void {
  if (tags.length > MAX_TAGS_PER_RESOURCE) {
    throw cloudFrontError("InvalidTagging", `A resource can have at most ${MAX_TAGS_PER_RESOURCE} tags; got ${tags.length}.`);
  }
  for (const tag of tags) {
    const key = tag.Key ?? "";
    const value = tag.Value ?? "";
    if (key.length < 1 || key.length > 128 || !TAG_CHARACTERS.test(key)) {
      throw cloudFrontError("InvalidTagging", `The tag key '${key}' must be 1 to 128 letters, digits, spaces or _ . : / = + - @.`);
    }
    if (value.length > 256 || !TAG_CHARACTERS.test(value)) {
      throw cloudFrontError("InvalidTagging", `The value of tag '${key}' must be at most 256 letters, digits, spaces or _ . : / = + - @.`);
    }
  }
}

/** Tags on distributions, addressed by ARN. */
export class TagService {
  constructor(private readonly context: ControlContext) {}

  list(resourceArn: string): Tag[] {
    this.requireResource(resourceArn);
    return this.context.store.getTags(resourceArn);
  }

  tag(resourceArn: string, tags: Tag[]): void {
    const { store } = this.context;
    store.transaction(() => {
      this.requireResource(resourceArn);
      const merged = new Map(store.getTags(resourceArn).map((tag) => [tag.Key, tag.Value]));
      for (const tag of tags) merged.set(tag.Key ?? "", tag.Value ?? "");
      validateTags([...merged].map(([Key, Value]) => ({ Key, Value })));
      for (const tag of tags) store.putTag(resourceArn, tag.Key ?? "", tag.Value ?? "");
    });
  }

  untag(resourceArn: string, keys: string[]): void {
    const { store } = this.context;
    store.transaction(() => {
      this.requireResource(resourceArn);
      for (const key of keys) store.deleteTag(resourceArn, key);
    });
  }

  private requireResource(resourceArn: string): void {
    const match = /^arn:aws:cloudfront::(\d{12}):distribution\/([A-Z0-9]+)$/.exec(resourceArn);
    const record = match ? this.context.store.getDistribution(match[2]!) : undefined;
    if (!record || record.arn !== resourceArn) {
      throw cloudFrontError("NoSuchResource", `The resource ${resourceArn} does not exist.`);
    }
  }
}
