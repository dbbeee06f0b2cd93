import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import { throwIfAborted } from "../deadline";
import { UmlfleetError } from "../errors";
import type { DebianSource } from "../spec";
import { run } from "../process";
import { removeTree } from "./sandbox";
import { StateDir, withLock, writeJson } from "./state";

/**
 * Debian roots built by mmdebstrap, cached by the content hash of what
 * determines them (suite, variant, packages, the mirror, the architecture),
 * so a second base with the same source, in any state folder, reuses the tree.
 *
 * The tree is kept as mmdebstrap's tarball: a tar records owners, which a
 * tree extracted without privilege cannot (images.ts puts them back when it
 * makes the ext4 image). mmdebstrap runs in unshare mode: as an ordinary user
 * it needs a subordinate id range (/etc/subuid); as root it needs nothing,
 * and unlike its root mode it mounts nothing in the host's namespace (a
 * killed root-mode build left /proc, /sys, /dev/pts and /dev/shm mounted
 * under /tmp; unshare mode left none; both gave the same bytes: measured).
 */

/** mmdebstrap's variants a base may use (`extract` and `custom` install nothing bootable). */
export const DEBIAN_VARIANTS = ["essential", "apt", "minbase", "required", "important", "standard"] as const;
/**
 * Fixed file times: with SOURCE_DATE_EPOCH, two builds of one spec against
 * one mirror state give the same tarball byte for byte (measured).
 */
export const DEBIAN_EPOCH = 1700000000;

export interface AptMirrors {
  /** The Debian archive (holds <suite> and <suite>-updates). */
  archive: string;
  /** The security archive (<suite>-security), when the host's apt uses one. */
  security?: string;
  /** The files read, for messages. */
  files: string[];
}

interface AptEntry {
  uri: string;
  suites: string[];
}

const URI = /^(https?|file):\/\/[A-Za-z0-9._~:/@%+-]+$/;

/** deb entries of one-line (.list) and deb822 (.sources) files; disabled ones skipped. */
export function parseAptSources(text: string, deb822: boolean): AptEntry[] {
  const out: AptEntry[] = [];
  if (!deb822) {
    for (const raw of text.split("\n")) {
      const line = raw.replace(/#.*$/, "").trim();
      const m = /^deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (m) out.push({ uri: m[2]!, suites: [m[3]!] });
    }
    return out;
  }
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    let last = "";
    for (const raw of stanza.split("\n")) {
      if (raw.startsWith("#")) continue;
      if (/^\s/.test(raw) && last) fields[last] += ` ${raw.trim()}`;
      else {
        const i = raw.indexOf(":");
        if (i < 0) continue;
        last = raw.slice(0, i).trim().toLowerCase();
        fields[last] = raw.slice(i + 1).trim();
      }
    }
    if (!(fields.types ?? "").split(/\s+/).includes("deb")) continue;
    if (/^(no|false)$/i.test(fields.enabled ?? "")) continue;
    for (const uri of (fields.uris ?? "").split(/\s+/).filter(Boolean))
      out.push({ uri, suites: (fields.suites ?? "").split(/\s+/).filter(Boolean) });
  }
  return out;
}

/**
 * The Debian mirror the machine's apt already uses: /etc/apt/sources.list
 * and the .list and .sources files of sources.list.d (other files there, such
 * as ones renamed to disable them, are not read by apt either). The archive
 * is the entry for the host's own release, the security archive the one for
 * its `-security` suite; entries of other vendors (their suites are no Debian
 * release name) are left alone.
 */
export function aptMirrors(etc = "/etc"): AptMirrors {
  const files: string[] = [];
  const entries: AptEntry[] = [];
  const add = (file: string, deb822: boolean) => {
    try {
      entries.push(...parseAptSources(readFileSync(file, "utf8"), deb822));
      files.push(file);
    } catch {
      /* absent or unreadable: apt would not use it either */
    }
  };
  add(join(etc, "apt", "sources.list"), false);
  const dir = join(etc, "apt", "sources.list.d");
  const names = existsSync(dir) ? readdirSync(dir).sort() : [];
  for (const n of names) {
    if (n.endsWith(".list")) add(join(dir, n), false);
    else if (n.endsWith(".sources")) add(join(dir, n), true);
  }
  const codename = /^VERSION_CODENAME=("?)([a-z]+)\1$/m.exec(readOr(join(etc, "os-release")))?.[2];
  const debian = entries.filter((e) => URI.test(e.uri));
  const archive = debian.find((e) => e.suites.some((s) => s === codename || s === `${codename}-updates`));
  const security = debian.find((e) => e.suites.some((s) => /-security$|\/updates$/.test(s)));
  if (!archive) {
    throw new UmlfleetError(
      "UMLFLEET_HOST_UNSUPPORTED",
      `no Debian mirror found in apt's sources (read: ${files.join(", ") || "none"}; looked for an entry for ` +
        `${codename ?? "the host's release"}): Debian bases are built from the mirror the machine's apt uses`,
      { files },
    );
  }
  return {
    archive: archive.uri.replace(/\/+$/, ""),
    ...(security ? { security: security.uri.replace(/\/+$/, "") } : {}),
    files,
  };
}

function readOr(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** One-line apt sources for `suite` from the host's mirrors: the release, its updates and its security archive. */
export function debianSources(suite: string, m: AptMirrors): string {
  const lines = [`deb ${m.archive} ${suite} main`, `deb ${m.archive} ${suite}-updates main`];
  if (m.security) lines.push(`deb ${m.security} ${suite}-security main`);
  return `${lines.join("\n")}\n`;
}

/** umlfleet's cache folder: $UMLFLEET_CACHE, else $XDG_CACHE_HOME/umlfleet, else ~/.cache/umlfleet (as kernels). */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.UMLFLEET_CACHE ?? join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "umlfleet");
}

/**
 * Package scripts run without a network. Before the essential packages are
 * installed, dpkg in the new tree becomes a wrapper that runs the real one in
 * a network namespace of its own (only a loopback, down), so no maintainer
 * script of any package reaches anything; apt itself downloads from the
 * mirror outside it. The real dpkg is put back once everything is installed.
 * Both hooks are fixed text: no spec value is in them.
 */
const OFFLINE_DPKG_HOOK = [
  "set -e",
  'mv "$1/usr/bin/dpkg" "$1/usr/bin/dpkg.umlfleet-online"',
  "printf '%s\\n' '#!/bin/sh' 'exec /usr/bin/unshare --net -- /usr/bin/dpkg.umlfleet-online \"$@\"' >\"$1/usr/bin/dpkg\"",
  'chmod 0755 "$1/usr/bin/dpkg"',
].join("\n");
/**
 * Afterwards: the real dpkg back; no SSH host keys (each guest makes its own
 * at first boot, src/host/guest/seed: a shared base would give every guest
 * the same keys, and random keys would make the build unreproducible); and
 * the build host's name and resolver, which mmdebstrap copies in, replaced.
 */
const FINISH_HOOK = [
  "set -e",
  'mv "$1/usr/bin/dpkg.umlfleet-online" "$1/usr/bin/dpkg"',
  'rm -f "$1"/etc/ssh/ssh_host_*_key "$1"/etc/ssh/ssh_host_*_key.pub',
  'echo debian >"$1/etc/hostname"',
  ': >"$1/etc/resolv.conf"',
].join("\n");

export interface DebianTree {
  /** mmdebstrap's tarball of the root. */
  tarPath: string;
  /** The cache key (content hash of what determines the tree). */
  key: string;
  /** True when this call built it. */
  built: boolean;
  buildMs?: number;
}

/** What a Debian source's tree depends on, hashed: equal inputs share one cache entry. */
export function debianKey(source: DebianSource, sources: string, arch: string): string {
  return createHash("sha256")
    .update(
      JSON.stringify({
        format: 1,
        suite: source.suite,
        variant: source.variant ?? "minbase",
        packages: source.packages ?? [],
        sources,
        arch,
        epoch: DEBIAN_EPOCH,
        hooks: [OFFLINE_DPKG_HOOK, FINISH_HOOK],
      }),
    )
    .digest("hex")
    .slice(0, 32);
}

/**
 * The cached tree for a Debian source, built with mmdebstrap when it is not
 * there yet (one build per key at a time, across processes). Throws
 * UMLFLEET_HOST_UNSUPPORTED when the host cannot build it (no mmdebstrap, no
 * subordinate ids for an ordinary user, no Debian mirror), naming the fix, and
 * UMLFLEET_COMMAND_FAILED with mmdebstrap's last words when the build fails.
 */
export async function ensureDebianTree(
  source: DebianSource,
  opts: { timeoutMs?: number; signal?: AbortSignal; env?: NodeJS.ProcessEnv; etc?: string } = {},
): Promise<DebianTree> {
  const env = opts.env ?? process.env;
  const mirrors = aptMirrors(opts.etc);
  const sources = debianSources(source.suite, mirrors);
  const arch = (await run("dpkg", ["--print-architecture"], { timeoutMs: 10_000 })).stdout.trim();
  const key = debianKey(source, sources, arch);
  const root = join(cacheRoot(env), "debian");
  const dir = join(root, key);
  const tarPath = join(dir, "rootfs.tar");
  if (existsSync(tarPath)) return { tarPath, key, built: false };
  mkdirSync(root, { recursive: true, mode: 0o700 });
  return withLock(
    new StateDir(root),
    key,
    async () => {
      if (existsSync(tarPath)) return { tarPath, key, built: false };
      await checkCanBuild();
      const work = mkdtempSync(join(root, `.build-${key.slice(0, 8)}-`));
      const started = performance.now();
      try {
        const sourcesFile = join(work, "sources.list");
        writeJson(join(work, "spec.json"), { source, sources, arch });
        writeFileSync(sourcesFile, sources);
        const out = join(work, "rootfs.tar");
        const args = [
          "--mode=unshare",
          `--variant=${source.variant ?? "minbase"}`,
          "--format=tar",
          ...(source.packages?.length ? [`--include=${source.packages.join(",")}`] : []),
          `--extract-hook=${OFFLINE_DPKG_HOOK}`,
          `--customize-hook=${FINISH_HOOK}`,
          source.suite,
          out,
          sourcesFile,
        ];
        const r = await run("mmdebstrap", args, {
          timeoutMs: opts.timeoutMs ?? 20 * 60_000,
          signal: opts.signal,
          allowFailure: true,
          env: { ...env, SOURCE_DATE_EPOCH: String(DEBIAN_EPOCH), TMPDIR: work, LC_ALL: "C.UTF-8" },
        });
        // Cancelled by the caller: its own error (UMLFLEET_CANCELLED or OPERATION_TIMEOUT), not mmdebstrap's.
        throwIfAborted(opts.signal, `building the Debian tree ${key.slice(0, 12)}`);
        if (r.exitCode !== 0 || r.timedOut) {
          const why = r.timedOut
            ? `timed out after ${opts.timeoutMs ?? 20 * 60_000} ms`
            : `exited ${r.exitCode}`;
          throw new UmlfleetError(
            "UMLFLEET_COMMAND_FAILED",
            `/source: mmdebstrap (${source.suite}, ${source.variant ?? "minbase"}) ${why}: ${lastLines(r.stderr, 12)}`,
            {
              field: "/source",
              exitCode: r.exitCode,
              timedOut: r.timedOut,
              stderrTail: lastLines(r.stderr, 40),
            },
          );
        }
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const buildMs = Math.round(performance.now() - started);
        writeJson(join(dir, "info.json"), {
          source,
          sources,
          arch,
          sourceDateEpoch: DEBIAN_EPOCH,
          mmdebstrap: (await run("mmdebstrap", ["--version"], { allowFailure: true })).stdout.trim(),
          buildMs,
          builtAt: new Date().toISOString(),
          sizeBytes: statSync(out).size,
        });
        renameSync(out, tarPath);
        return { tarPath, key, built: true, buildMs };
      } finally {
        await removeTree(work).catch(() => undefined);
      }
    },
    opts.timeoutMs ?? 20 * 60_000,
    opts.signal,
  );
}

const lastLines = (s: string, n: number) => s.trim().split("\n").slice(-n).join("\n");

/** What unshare mode needs: mmdebstrap; as an ordinary user also newuidmap and a subordinate id range. */
async function checkCanBuild(): Promise<void> {
  const onPath = async (tool: string) =>
    (await run("sh", ["-c", 'command -v "$1"', "sh", tool], { allowFailure: true, timeoutMs: 10_000 }))
      .exitCode === 0;
  const root = process.getuid?.() === 0;
  if (!(await onPath("mmdebstrap")) || (!root && !(await onPath("newuidmap"))))
    throw new UmlfleetError(
      "UMLFLEET_HOST_UNSUPPORTED",
      `/source: Debian bases are built by mmdebstrap, which is not installed (fix: ${sudo()}apt-get install mmdebstrap uidmap)`,
      { field: "/source", fix: `${sudo()}apt-get install mmdebstrap uidmap` },
    );
  if (root) return;
  const user = userInfo().username;
  const ranged = (f: string) =>
    readOr(f)
      .split("\n")
      .some((l) => l.split(":")[0] === user);
  if (!ranged("/etc/subuid") || !ranged("/etc/subgid")) {
    const fix = `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user}`;
    throw new UmlfleetError(
      "UMLFLEET_HOST_UNSUPPORTED",
      `/source: building a Debian base without root needs a subordinate uid and gid range for ${user} in ` +
        `/etc/subuid and /etc/subgid (mmdebstrap's unshare mode; fix: ${fix})`,
      { field: "/source", fix },
    );
  }
}

const sudo = () => (process.getuid?.() === 0 ? "" : "sudo ");
