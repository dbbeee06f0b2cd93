// `pulumi up` in this folder: the bridge lab (README.md). `pulumi config set cut true` cuts the a-c link.
import * as pulumi from "@pulumi/pulumi";
import { lab } from "./lab";

export = lab({ cut: new pulumi.Config().getBoolean("cut") ?? false });
