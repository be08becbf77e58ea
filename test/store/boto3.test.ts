import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { makeDataDir, removeDataDir, startStore, TEST_CREDENTIALS } from "./harness.js";

// Debian's python3-boto3 (1.26) under /usr/bin/python3, and pip's current
// boto3 under the `python3` on PATH, which sends CRC32 checksum trailers by default.
const PYTHONS = [
  { name: "Debian", bin: "/usr/bin/python3" },
  { name: "pip", bin: "python3" },
];

function boto3Version(python: string): string | undefined {
  try {
    return execFileSync(python, ["-c", "import boto3; print(boto3.__version__)"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

// Drives the store with boto3: SigV4 and SigV2 clients, a multipart upload
// through the transfer manager, listings and a presigned URL.
const SCRIPT = String.raw`
import os, sys, hashlib, urllib.request
import boto3
from botocore.config import Config
from boto3.s3.transfer import TransferConfig

endpoint = os.environ["ENDPOINT"]
def client(signature):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=os.environ["KEY_ID"], aws_secret_access_key=os.environ["SECRET"],
        config=Config(signature_version=signature, s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

s3 = client("s3v4")
s3.create_bucket(Bucket="boto-bucket")
s3.put_object(Bucket="boto-bucket", Key="dir/hello.txt", Body=b"hello boto", ContentType="text/plain", Metadata={"k": "v"})
got = s3.get_object(Bucket="boto-bucket", Key="dir/hello.txt")
assert got["Body"].read() == b"hello boto"
assert got["ContentType"] == "text/plain"
assert got["Metadata"] == {"k": "v"}, got["Metadata"]

data = os.urandom(12 * 1024 * 1024)
import io
s3.upload_fileobj(io.BytesIO(data), "boto-bucket", "big.bin",
    Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
head = s3.head_object(Bucket="boto-bucket", Key="big.bin")
assert head["ETag"].endswith('-3"'), head["ETag"]
out = io.BytesIO()
s3.download_fileobj("boto-bucket", "big.bin", out)
assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(data).digest()

# A managed copy above the threshold uses UploadPartCopy with byte ranges.
s3.copy({"Bucket": "boto-bucket", "Key": "big.bin"}, "boto-bucket", "big-copy.bin",
    Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
copied = s3.get_object(Bucket="boto-bucket", Key="big-copy.bin")
assert copied["ETag"].endswith('-3"'), copied["ETag"]
assert hashlib.sha256(copied["Body"].read()).digest() == hashlib.sha256(data).digest()
second_part = s3.get_object(Bucket="boto-bucket", Key="big-copy.bin", PartNumber=2)
assert second_part["PartsCount"] == 3, second_part
assert second_part["Body"].read() == data[5 * 1024 * 1024:10 * 1024 * 1024]

listing = s3.list_objects_v2(Bucket="boto-bucket", Delimiter="/")
assert [p["Prefix"] for p in listing.get("CommonPrefixes", [])] == ["dir/"], listing
assert [c["Key"] for c in listing["Contents"]] == ["big-copy.bin", "big.bin"]
v1 = s3.list_objects(Bucket="boto-bucket", Prefix="dir/")
assert [c["Key"] for c in v1["Contents"]] == ["dir/hello.txt"]

url = s3.generate_presigned_url("get_object", Params={"Bucket": "boto-bucket", "Key": "dir/hello.txt"}, ExpiresIn=300)
assert urllib.request.urlopen(url).read() == b"hello boto"

v2 = client("s3")
v2.put_object(Bucket="boto-bucket", Key="sigv2 key+plus", Body=b"v2 body")
assert v2.get_object(Bucket="boto-bucket", Key="sigv2 key+plus")["Body"].read() == b"v2 body"
# botocore signs bucket-level SigV2 requests with a trailing slash on the resource.
assert "sigv2 key+plus" in [item["Key"] for item in v2.list_objects(Bucket="boto-bucket")["Contents"]]
assert v2.list_objects_v2(Bucket="boto-bucket", Prefix="sigv2")["KeyCount"] == 1
url2 = v2.generate_presigned_url("get_object", Params={"Bucket": "boto-bucket", "Key": "dir/hello.txt"}, ExpiresIn=300)
assert "AWSAccessKeyId=" in url2
assert urllib.request.urlopen(url2).read() == b"hello boto"

try:
    s3.get_object(Bucket="boto-bucket", Key="missing")
    raise SystemExit("expected NoSuchKey")
except s3.exceptions.NoSuchKey:
    pass
s3.delete_objects(Bucket="boto-bucket", Delete={"Objects": [{"Key": "big.bin"}, {"Key": "big-copy.bin"}, {"Key": "dir/hello.txt"}, {"Key": "sigv2 key+plus"}]})
s3.delete_bucket(Bucket="boto-bucket")
print("boto3 ok")
`;

for (const python of PYTHONS) {
  const version = boto3Version(python.bin);
  const skip = version === undefined ? `boto3 is not importable by ${python.bin}` : false;

  test(`${python.name} boto3 ${version ?? ""} drives the store`, { skip }, async () => {
    const dataDir = await makeDataDir();
    const store = await startStore(dataDir);
    try {
      const output = await new Promise<string>((resolve, reject) => {
        execFile(
          python.bin,
          ["-c", SCRIPT],
          {
            env: {
              PATH: process.env.PATH ?? "/usr/bin:/bin",
            HOME: process.env.HOME ?? "/",
              ENDPOINT: store.endpoint,
              KEY_ID: TEST_CREDENTIALS.root.accessKeyId,
              SECRET: TEST_CREDENTIALS.root.secretAccessKey,
              AWS_CONFIG_FILE: "/dev/null",
              AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
              AWS_EC2_METADATA_DISABLED: "true",
              NO_PROXY: "*",
            },
            timeout: 120_000,
          },
          (error, stdout, stderr) => (error ? reject(new Error(`boto3 script failed: ${stderr || error.message}`)) : resolve(stdout)),
        );
      });
      assert.match(output, /boto3 ok/);
    } finally {
      await store.stop();
      await removeDataDir(dataDir);
    }
  });
}
