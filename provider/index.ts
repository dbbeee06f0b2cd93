/**
 * umlfleet's Pulumi resources. Each is a dynamic resource whose provider drives
 * the embedded UML runtime on the machine running the program.
 */
export * from "./resources";
export { Fleet, type FleetArgs } from "./fleet";
export { importLab, type ImportLabOptions, type ImportedLab } from "./lab";
export { LabError, type LabMeta } from "../src/lab-conf";
export { LabChecks, type LabChecksArgs, type LabCheckArgs } from "./checks";
export type { CheckResult } from "../src/lab-checks";
