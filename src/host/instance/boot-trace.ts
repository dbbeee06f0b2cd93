/**
 * Timestamps of a boot's host-side steps, for the benchmarks only
 * (bench/ready.ts sets `bootTrace.mark`): nothing is recorded unless a
 * caller in the same process asks, so a boot pays one property read per step.
 */
export const bootTrace: { mark?: (instance: string, step: string) => void } = {};

/** Record a step of `instance`'s boot, if someone listens. */
export function traceBoot(instance: string, step: string): void {
  bootTrace.mark?.(instance, step);
}
