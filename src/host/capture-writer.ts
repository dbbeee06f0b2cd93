/**
 * The capture writer of one network (capture.ts starts it, detached):
 *
 *   node capture-writer.js <switch folder> <max bytes> new|append [seccomp]
 *     (fd 3: the pcap file; with `seccomp`, fd 4: the compiled seccomp filter)
 *
 * It plugs `vde_plug` into the switch (a hub while captured, so every frame
 * reaches this port once), in a bubblewrap sandbox of the switch's kind that
 * holds only the switch folder, and turns vde_plug's stream (each frame
 * behind a 2-byte big-endian length) into pcap records on fd 3, a file the
 * host opened and checked. It never opens a path itself, and what guests
 * send decides only the bytes of records: a record is at most one frame, a
 * frame's length is what the stream says and at most 65535. Past `max
 * bytes`, frames are counted, not written. It exits when vde_plug does (the
 * switch went away), and stops vde_plug when it is told to stop. With
 * `seccomp`, bwrap loads the filter of the other sandboxes (seccomp.ts) from
 * fd 4 (passed to it as its fd 3) before it execs vde_plug.
 */
import { spawn } from "node:child_process";
import { fstatSync, writeSync } from "node:fs";
import { pcapHeader, pcapRecord } from "../pcap";
import { plugFiles, SANDBOX_BIN, switchSandboxArgv } from "./sandbox";

const PCAP_FD = 3;
/** Where the host passes the seccomp filter, and where bwrap finds it (its stdio slot 3: nothing else of ours is passed on). */
const FILTER_FD = 4;
const BWRAP_FILTER_FD = 3;

const USAGE =
  "usage: capture-writer <switch folder> <max bytes> new|append [seccomp] (fd 3: the pcap file; fd 4: the filter)\n";

function main(): void {
  const [switchDir, maxText, mode, filtered, ...extra] = process.argv.slice(2);
  if (
    !switchDir ||
    !maxText ||
    !/^\d+$/.test(maxText) ||
    (mode !== "new" && mode !== "append") ||
    (filtered !== undefined && filtered !== "seccomp") ||
    extra.length
  ) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  // Fail closed: a filter that was asked for but is not a file on fd 4 starts no vde_plug.
  if (filtered && !isFileFd(FILTER_FD)) {
    process.stderr.write(
      `capture-writer: seccomp asked for, but fd ${FILTER_FD} is not an open file\n${USAGE}`,
    );
    process.exit(2);
  }
  const maxBytes = Number(maxText);
  let size = fstatSync(PCAP_FD).size;
  if (mode === "new" || size === 0) {
    // The host opened the file O_APPEND (and O_TRUNC for a new capture): every write lands at its end.
    writeSync(PCAP_FD, pcapHeader());
    size = 24;
  }
  const plug = spawn(
    SANDBOX_BIN,
    [
      ...switchSandboxArgv(switchDir, plugFiles(), undefined, filtered ? { seccompFd: BWRAP_FILTER_FD } : {}),
      "/usr/bin/vde_plug",
      `vde://${switchDir}`,
    ],
    // stdin: a pipe nothing is ever written to (vde_plug would send it to the switch); it ends with us.
    // The pcap file (our fd 3) is not passed: bwrap's fd 3 is the filter, or nothing.
    { stdio: ["pipe", "pipe", "inherit", ...(filtered ? [FILTER_FD] : [])], env: {} },
  );
  let dropped = 0;
  let pending = Buffer.alloc(0);
  // Wall-clock microseconds from a monotonic clock: records stay ordered.
  const startUs = BigInt(Date.now()) * 1000n - process.hrtime.bigint() / 1000n;
  plug.stdout!.on("data", (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    const out: Buffer[] = [];
    let at = 0;
    while (pending.length - at >= 2) {
      const len = pending.readUInt16BE(at);
      if (pending.length - at - 2 < len) break;
      const frame = pending.subarray(at + 2, at + 2 + len);
      at += 2 + len;
      const record = pcapRecord(startUs + process.hrtime.bigint() / 1000n, frame);
      if (size + record.length > maxBytes) {
        dropped++;
        continue;
      }
      out.push(record);
      size += record.length;
    }
    pending = pending.subarray(at);
    if (out.length) {
      const data = Buffer.concat(out);
      writeSync(PCAP_FD, data);
    }
  });
  const stop = () => {
    plug.kill("SIGTERM");
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  plug.on("exit", (code, signal) => {
    process.stderr.write(
      `capture-writer: vde_plug ended (${code ?? signal}); ${size} bytes written${dropped ? `, ${dropped} frames over the size limit not written` : ""}\n`,
    );
    process.exit(0);
  });
  process.stderr.write(`capture-writer: capturing ${switchDir}\n`);
}

function isFileFd(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

main();
