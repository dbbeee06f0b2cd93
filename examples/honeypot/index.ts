// `pulumi up` in this folder: the honeypot lab (README.md). `pulumi config set capturePath <file.pcap>` moves the capture.
import * as pulumi from "@pulumi/pulumi";
import { lab } from "./lab";

const capturePath = new pulumi.Config().get("capturePath");
export = lab(capturePath ? { capturePath } : {});
