// Entry point of the root Pulumi.yaml: `pulumi up` in the project folder.
import { lab } from "./lab";

export = lab();
