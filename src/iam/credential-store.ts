import type { Logger } from "../common/logger.js";
import type { CredentialStore, SigningKey } from "../api/auth/principal.js";
import type { IamStore } from "./store.js";

/** Unknown key ids remembered between database changes; the set is cleared when it grows past this. */
const MAX_REMEMBERED_MISSES = 10_000;

/**
 * Looks up signing keys: first the fixed keys (root and the CloudFront
 * service key), then the IAM users' active keys, decrypted once and cached.
 *
 * Invariant: a cached key is valid only while the database has not changed.
 * Writes through this process's IamStore clear the cache through its change
 * callback, and every lookup compares SQLite's data_version, which moves when
 * another process (the CLI) commits. So a deleted or deactivated key fails on
 * the next request, with one `PRAGMA data_version` read per lookup.
 */
export class IamCredentialStore implements CredentialStore {
  private readonly cache = new Map<string, SigningKey>();
  private readonly misses = new Set<string>();
  private seenDataVersion: number;

  constructor(
    private readonly fixed: CredentialStore,
    private readonly store: IamStore,
    private readonly accountId: string,
    private readonly log: Logger,
  ) {
    this.seenDataVersion = store.currentDataVersion();
    store.onChange(() => this.forget());
  }

  lookup(accessKeyId: string): SigningKey | undefined {
    const fixedKey = this.fixed.lookup(accessKeyId);
    if (fixedKey) return fixedKey;

    const dataVersion = this.store.currentDataVersion();
    if (dataVersion !== this.seenDataVersion) {
      this.seenDataVersion = dataVersion;
      this.forget();
    }
    const cached = this.cache.get(accessKeyId);
    if (cached) return cached;
    if (this.misses.has(accessKeyId)) return undefined;

    let found;
    try {
      found = this.store.findActiveKey(accessKeyId);
    } catch (error) {
      // A sealed secret that does not open means a wrong master key or a damaged row.
      this.log.error({ err: error, accessKeyId }, "cannot decrypt the secret of an access key");
      return undefined;
    }
    if (!found) {
      if (this.misses.size >= MAX_REMEMBERED_MISSES) this.misses.clear();
      this.misses.add(accessKeyId);
      return undefined;
    }
    const key: SigningKey = {
      accessKeyId: found.accessKeyId,
      secretAccessKey: found.secretAccessKey,
      principal: {
        type: "user",
        accessKeyId: found.accessKeyId,
        accountId: this.accountId,
        userName: found.user.userName,
        userId: found.user.userId,
        arn: found.user.arn,
      },
    };
    this.cache.set(accessKeyId, key);
    return key;
  }

  private forget(): void {
    this.cache.clear();
    this.misses.clear();
  }
}
