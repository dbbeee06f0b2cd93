// `pulumi up` in this folder: the bridge lab (README.md). `pulumi config set cut true` cuts the a-c link;
// `pulumi config set cBridge ip-link` swaps c's bridge.
import * as pulumi from "@pulumi/pulumi";
import { BRIDGES, lab } from "./lab";

const config = new pulumi.Config();
const cBridge = config.get<keyof typeof BRIDGES>("cBridge");
export = lab({ cut: config.getBoolean("cut") ?? false, ...(cBridge ? { bridges: { c: cBridge } } : {}) });
