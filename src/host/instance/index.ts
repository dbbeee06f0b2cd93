export { Instances } from "./instances";
export { withReplug } from "./hotplug";
export { nicMac } from "./types";
export type { InstanceRecord, InstanceStatus, StartOptions, StopOptions } from "./types";
export type { InstanceInspection } from "./status";
