import { createHash, type Hash } from "node:crypto";
import { crc32 } from "node:zlib";
import { Crc32c, Crc64Nvme } from "@aws-sdk/checksums/crc";

/** The additional checksum algorithms of S3 (`x-amz-checksum-*`), spelled as on the wire. */
export const CHECKSUM_ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** How a stored checksum covers the object: the whole byte stream, or a checksum of part checksums. */
export type ChecksumType = "FULL_OBJECT" | "COMPOSITE";

/** A checksum as stored with an object or part: base64 of the big-endian digest. */
export interface StoredChecksum {
  algorithm: ChecksumAlgorithm;
  valueBase64: string;
  type: ChecksumType;
}

/** Returns the algorithm named by `name` (any case), or undefined. */
export function parseChecksumAlgorithm(name: string): ChecksumAlgorithm | undefined {
  const upper = name.toUpperCase();
  return CHECKSUM_ALGORITHMS.find((algorithm) => algorithm === upper);
}

/** The header that carries a checksum value, such as `x-amz-checksum-crc32`. */
export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm.toLowerCase()}`;
}

/** The element name in S3 XML documents, such as `ChecksumCRC32`. */
export function checksumElementName(algorithm: ChecksumAlgorithm): string {
  return `Checksum${algorithm}`;
}

/** The digest length in bytes, used to reject malformed checksum values early. */
export function checksumDigestBytes(algorithm: ChecksumAlgorithm): number {
  switch (algorithm) {
    case "CRC32":
    case "CRC32C":
      return 4;
    case "CRC64NVME":
      return 8;
    case "SHA1":
      return 20;
    case "SHA256":
      return 32;
  }
}

/** An incremental checksum over a byte stream. */
export interface ChecksumHasher {
  update(data: Uint8Array): void;
  digestBase64(): Promise<string>;
}

class Crc32Hasher implements ChecksumHasher {
  private value = 0;

  update(data: Uint8Array): void {
    // zlib.crc32 (Node.js 20.15 and later) continues from the previous value.
    this.value = crc32(data, this.value);
  }

  async digestBase64(): Promise<string> {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.value >>> 0);
    return out.toString("base64");
  }
}

class SdkHasher implements ChecksumHasher {
  constructor(private readonly impl: { update(data: Uint8Array): void; digest(): Promise<Uint8Array> }) {}

  update(data: Uint8Array): void {
    this.impl.update(data);
  }

  async digestBase64(): Promise<string> {
    return Buffer.from(await this.impl.digest()).toString("base64");
  }
}

class NodeHashHasher implements ChecksumHasher {
  private readonly hash: Hash;

  constructor(algorithm: "sha1" | "sha256") {
    this.hash = createHash(algorithm);
  }

  update(data: Uint8Array): void {
    this.hash.update(data);
  }

  async digestBase64(): Promise<string> {
    return this.hash.digest("base64");
  }
}

export function createChecksumHasher(algorithm: ChecksumAlgorithm): ChecksumHasher {
  switch (algorithm) {
    case "CRC32":
      return new Crc32Hasher();
    case "CRC32C":
      return new SdkHasher(new Crc32c());
    case "CRC64NVME":
      return new SdkHasher(new Crc64Nvme());
    case "SHA1":
      return new NodeHashHasher("sha1");
    case "SHA256":
      return new NodeHashHasher("sha256");
  }
}

/**
 * Computes the composite checksum of a multipart object: the checksum of the
 * concatenated binary part checksums, suffixed with `-<part count>`, as the S3
 * user guide describes for COMPOSITE checksums ("Checking object integrity").
 */
export async function compositeChecksum(algorithm: ChecksumAlgorithm, partValuesBase64: string[]): Promise<string> {
  const hasher = createChecksumHasher(algorithm);
  for (const value of partValuesBase64) hasher.update(Buffer.from(value, "base64"));
  return `${await hasher.digestBase64()}-${partValuesBase64.length}`;
}
