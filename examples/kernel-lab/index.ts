// `pulumi up` in this folder (README.md). The second kernel is Debian's where
// doctor's probe boots a guest process under it, else a variant build of the
// lean kernel; `pulumi config set second variant|debian` chooses.
import * as pulumi from "@pulumi/pulumi";
import { kernelRunsGuests } from "umlfleet/runtime";
import { DEBIAN_KERNEL, lab, type SecondKernel } from "./lab";

export = async () => {
  let second = new pulumi.Config().get<SecondKernel>("second");
  if (!second) {
    const probe = await kernelRunsGuests(DEBIAN_KERNEL);
    second = probe.ok ? "debian" : "variant";
    void pulumi.log.info(`second kernel: ${second} (${probe.detail})`);
  }
  return lab({ second });
};
