// `pulumi up` in this folder: the Kathará lab in ./lab (README.md). `pulumi config set labDir PATH` imports another.
import * as pulumi from "@pulumi/pulumi";
import { lab } from "./lab";

const config = new pulumi.Config();
export = lab({ dir: config.get("labDir") ?? "lab" });
