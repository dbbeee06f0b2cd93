// `pulumi up` in this folder: one machine per user (README.md). The users:
//   pulumi config set --path 'users[0].name' alice
//   pulumi config set --path 'users[0].sshPublicKey' "$(cat alice.pub)"
// and so on; `pulumi config set tap <name>` and `subnet 10.77.0` move the host link.
import * as pulumi from "@pulumi/pulumi";
import { lab, type Student } from "./lab";

const config = new pulumi.Config();
export = lab({
  users: config.requireObject<Student[]>("users"),
  ...(config.get("tap") ? { tap: config.get("tap") } : {}),
  ...(config.get("subnet") ? { subnet: config.get("subnet") } : {}),
});
