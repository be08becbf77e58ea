import { defineCliTests } from "./aws-cli.js";

// Debian's AWS CLI v2 (2.9), which ignores AWS_ENDPOINT_URL.
defineCliTests({ name: "v2", bin: "/usr/bin/aws" });
