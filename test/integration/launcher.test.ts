import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BatchLauncher } from "../../src/host/launcher";
import { waitFor, isAlive, identify } from "../../src/process";
import { newTestDir } from "../helpers/runtime";

describe("BatchLauncher: many processes from one bash", () => {
  const dir = newTestDir("launch");
  mkdirSync(dir, { recursive: true });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("starts every party's process once all arrived or left, with its log, its fds from 3 and an empty environment", async () => {
    const batch = new BatchLauncher(3);
    const parties = [batch.party(), batch.party(), batch.party()];
    const req = (i: number) => {
      writeFileSync(join(dir, `fd3-${i}`), "");
      return {
        // An argument with a quote and spaces must arrive as one word, unchanged.
        argv: ["/bin/sh", "-c", 'echo "arg=$0"; echo "env=$(env | wc -l)"; echo three >&3', "it's a b"],
        consoleLog: join(dir, `log-${i}`),
        consoleCapBytes: 1 << 20,
        fifos: [join(dir, `fd3-${i}`)],
        infoFile: join(dir, `info-${i}`),
        passFds: [],
      };
    };
    const first = parties[0]!.launch(req(0));
    let settled = false;
    void first.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(settled).toBe(false); // waits for the others
    parties[2]!.leave(); // a party that failed before launching
    const [a, b] = await Promise.all([first, parties[1]!.launch(req(1))]);
    for (const [i, l] of [a, b].entries()) {
      expect(l.pid).toBeGreaterThan(0);
      const id = identify(l.pid!);
      await waitFor(() => !id || !isAlive(id), 5_000, 20);
      // The log is written by the console relay, which may finish after the process.
      const logFile = join(dir, `log-${i}`);
      const read = () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
      await waitFor(() => read().includes("env="), 5_000, 20);
      const log = read();
      expect(log).toContain("arg=it's a b");
      // env -i: only what sh itself sets (PWD, SHLVL, _ ...), never our PATH or HOME.
      expect(Number(/env=(\d+)/.exec(log)![1])).toBeLessThan(5);
      expect(readFileSync(join(dir, `fd3-${i}`), "utf8")).toBe("three\n");
    }
  });
});
