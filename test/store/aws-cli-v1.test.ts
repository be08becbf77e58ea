import { defineCliTests } from "./aws-cli.js";

// pip's AWS CLI v1, `aws` on PATH.
defineCliTests({ name: "v1", bin: "aws" });
