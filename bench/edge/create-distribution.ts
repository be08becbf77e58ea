// Creates a distribution whose custom origin is the benchmark origin, waits until it is
// deployed, and prints its domain name. Reads PORTICO_API_URL, ORIGIN_PORT and the root
// key from PORTICO_ACCESS_KEY_ID and PORTICO_SECRET_ACCESS_KEY.
import { CloudFrontClient, CreateDistributionCommand, GetDistributionCommand } from "@aws-sdk/client-cloudfront";

const endpoint = process.env.PORTICO_API_URL ?? "http://127.0.0.1:4590";
const originPort = Number(process.env.ORIGIN_PORT ?? 9000);
const accessKeyId = process.env.PORTICO_ACCESS_KEY_ID;
const secretAccessKey = process.env.PORTICO_SECRET_ACCESS_KEY;
if (accessKeyId === undefined || secretAccessKey === undefined) {
  throw new Error("PORTICO_ACCESS_KEY_ID and PORTICO_SECRET_ACCESS_KEY must be set");
}

const client = new CloudFrontClient({ endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey } });
const created = await client.send(
  new CreateDistributionCommand({
    DistributionConfig: {
      CallerReference: `bench-${Date.now()}`,
      Comment: "edge benchmark",
      Enabled: true,
      Origins: {
        Quantity: 1,
        Items: [
          {
            Id: "bench-origin",
            DomainName: "127.0.0.1",
            CustomOriginConfig: { HTTPPort: originPort, HTTPSPort: 443, OriginProtocolPolicy: "http-only" },
          },
        ],
      },
      DefaultCacheBehavior: {
        TargetOriginId: "bench-origin",
        ViewerProtocolPolicy: "allow-all",
        MinTTL: 0,
        DefaultTTL: 86400,
        MaxTTL: 31536000,
        ForwardedValues: { QueryString: false, Cookies: { Forward: "none" } },
      },
    },
  }),
);
const id = created.Distribution!.Id!;
const deadlineMs = Date.now() + 30_000;
for (;;) {
  const { Distribution } = await client.send(new GetDistributionCommand({ Id: id }));
  if (Distribution?.Status === "Deployed") break;
  if (Date.now() > deadlineMs) throw new Error(`distribution ${id} not deployed after 30 s`);
  await new Promise((resolve) => setTimeout(resolve, 200));
}
process.stdout.write(`${created.Distribution!.DomainName!}\n`);
