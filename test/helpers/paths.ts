import { join } from "node:path";

/** Short on purpose: UML's and VDE's unix socket paths must fit in 108 bytes. */
export const TEST_ROOT = process.env.UMLFLEET_TEST_ROOT ?? "/tmp/uft";
export const newTestDir = (label: string) =>
  join(TEST_ROOT, `${label}-${process.pid}-${Math.random().toString(36).slice(2, 7)}`);
