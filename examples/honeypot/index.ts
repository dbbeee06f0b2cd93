// `pulumi up` in this folder: the honeypot lab (README.md). `pulumi config set capturePath <file.pcap>`
// moves the capture; `pulumi config set port <n>` moves the service (default 23).
import * as pulumi from "@pulumi/pulumi";
import { lab } from "./lab";

const config = new pulumi.Config();
const capturePath = config.get("capturePath");
const port = config.getNumber("port");
export = lab({ ...(capturePath ? { capturePath } : {}), ...(port ? { port } : {}) });
