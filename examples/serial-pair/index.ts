// `pulumi up` in this folder: two machines joined by a serial cable (README.md).
import { lab } from "./lab";

export = lab();
