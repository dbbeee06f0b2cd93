/** Where a verb writes and what environment it sees; tests pass their own. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Ends a verb that runs until interrupted (`logs -f`); the command line never sets it. */
  stop?: AbortSignal;
  /** What `console` and `serial` read keystrokes from (the command line's stdin). */
  stdin?: NodeJS.ReadStream;
  /** What `out` writes to, when it is a terminal (progress lines are rewritten in place there). */
  outStream?: { isTTY?: boolean; columns?: number };
}

/** One `umlfleet <verb>`: its own arguments in, an exit status out. */
export interface Verb {
  usage: string;
  summary: string;
  /** More for `umlfleet VERB --help`: options, exit statuses (lines ending in newlines). */
  help?: string;
  run(args: string[], io: Io): Promise<number>;
}

/** Exit status of a usage error (as getopt-style tools use). */
export const USAGE_ERROR = 2;
