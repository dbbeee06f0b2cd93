import { setMaxListeners } from "node:events";
import { isUmlfleetError, UmlfleetError } from "./errors";

/**
 * A deadline for one operation: the caller's signal, a timeout, or both,
 * whichever comes first. Pulumi never cancels a dynamic provider (and a
 * remote call can hang), so every long operation takes one, and one signal is
 * threaded from the top down through lock waits, readiness waits, child
 * processes and mconsole calls. What an aborted step began is cleaned up by
 * the step itself; the error says which it was: UMLFLEET_CANCELLED (the
 * caller's signal) or UMLFLEET_OPERATION_TIMEOUT (the time ran out).
 */
export interface Deadline {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Run `fn` with one signal that aborts when `opts.signal` does or `opts.timeoutMs` passes. */
export async function withDeadline<T>(
  what: string,
  opts: Deadline,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  throwIfAborted(opts.signal, what);
  const ctl = new AbortController();
  // One operation's signal is shared by all its parallel steps (a group's members):
  // that many listeners are by design, not a leak (Node warns past 10).
  setMaxListeners(0, ctl.signal);
  const onAbort = () => ctl.abort(opts.signal!.reason);
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const timer =
    opts.timeoutMs === undefined
      ? undefined
      : setTimeout(
          () =>
            ctl.abort(
              new UmlfleetError(
                "UMLFLEET_OPERATION_TIMEOUT",
                `${what} did not finish within ${opts.timeoutMs} ms`,
                {
                  what,
                  timeoutMs: opts.timeoutMs,
                },
              ),
            ),
          opts.timeoutMs,
        );
  try {
    return await fn(ctl.signal);
  } catch (e) {
    // A step that failed because it was stopped (a killed child, a lock not
    // waited for) reports why it was stopped.
    if (ctl.signal.aborted) throw abortError(ctl.signal, what, e);
    throw e;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

/** Throw the abort's error when `signal` has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}

/** The error an aborted operation ends with: the deadline's own, else UMLFLEET_CANCELLED. */
export function abortError(signal: AbortSignal, what: string, cause?: unknown): UmlfleetError {
  const reason: unknown = signal.reason;
  if (isUmlfleetError(reason)) return reason;
  return new UmlfleetError(
    "UMLFLEET_CANCELLED",
    `${what} was cancelled${reason instanceof Error ? `: ${reason.message}` : ""}`,
    { what },
    { cause: cause ?? reason },
  );
}
