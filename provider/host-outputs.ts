/** Outputs a Host adds to its inputs. */
export const HOST_OUTPUTS: readonly string[] = [
  "hostId",
  "stateDir",
  "version",
  "kernels",
  "vde2",
  "bubblewrap",
  "cores",
  "memoryMiB",
  "freeDiskMiB",
  "userNamespaces",
  "shmExec",
  "netTun",
  "facts",
];
