/**
 * Where the provider gets a HostDriver for a resource: the only file in
 * provider/ that knows how hosts are reached. Today every resource is on the
 * machine running the provider (LocalRuntime over the resource's `stateDir`);
 * target hosts over SSH (issue #11) plug in here, chosen by a resource's `host`.
 */
import type { HostDriver } from "../src/host/driver";
import { LocalRuntime } from "../src/host/runtime";
import { StateDir } from "../src/host/state";
import { SpecValidator } from "../src/validation";

/** Pulumi's placeholder for values not known until apply (preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const validator = new SpecValidator();
const drivers = new Map<string, HostDriver>();
let makeDriver = (stateDir: string): HostDriver => new LocalRuntime({ stateDir }, validator);

/** The driver for a resource's inputs (or old outputs): one per state folder per provider process. */
export function driverFor(props: { stateDir?: unknown }): HostDriver {
  const dir =
    typeof props.stateDir === "string" && props.stateDir !== UNKNOWN
      ? props.stateDir
      : StateDir.defaultRoot();
  let d = drivers.get(dir);
  if (!d) {
    d = makeDriver(dir);
    drivers.set(dir, d);
  }
  return d;
}

/**
 * Tests only: serve every state folder with `factory` (a fake driver), or
 * LocalRuntime again when undefined. Drivers made so far are forgotten.
 */
export function useDriverFactory(factory?: (stateDir: string) => HostDriver): void {
  drivers.clear();
  makeDriver = factory ?? ((stateDir) => new LocalRuntime({ stateDir }, validator));
}

/** The state folder a resource that names none lives in (the local host's default). */
export function defaultStateDir(): string {
  return StateDir.defaultRoot();
}
