// `pulumi up` in this folder: a Debian bookworm guest with a login prompt on its second serial line (README.md).
import { lab } from "./lab";

export = lab();
