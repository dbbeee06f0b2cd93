import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyImpairment,
  impairmentCommands,
  parseReply,
  showInfo,
  WirefilterMgmt,
} from "../../src/host/wirefilter-mgmt";

/**
 * A stand-in for wirefilter's management socket, answering as the real one
 * does (captured from vde2 2.3.2): banner, prompt, data blocks, status lines.
 * The real one is spoken to in test/integration/impairment.test.ts.
 */
function fakeWirefilter(path: string, seen: string[], opts: { silent?: boolean } = {}): Server {
  const server = createServer((c) => {
    c.setEncoding("utf8");
    c.write("\nVDE wirefilter V.2.3.2\n(C) R.Davoli 2005,2006 - GPLv2\n\n");
    // The prompt may come in its own packet: the client must wait for it whole.
    setTimeout(() => c.write("VDEwf"), 5);
    setTimeout(() => c.write("$ "), 15);
    let buf = "";
    c.on("data", (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        seen.push(line);
        if (opts.silent) continue;
        if (line === "showinfo")
          c.write(
            "0000 DATA END WITH '.'\nWireFilter: bidirectional\nLoss   L->R 0+0U   R->L 10+0U\n" +
              "Delay  L->R 0+0U   R->L 200+0U\n.\n1000 Success\n\nVDEwf$ ",
          );
        else if (line.startsWith("bogus")) c.write("1038 Function not implemented\n\nVDEwf$ ");
        else c.write("1000 Success\n\nVDEwf$ ");
      }
    });
  });
  server.listen(path);
  return server;
}

describe("wirefilter management protocol", () => {
  const dir = mkdtempSync(join(tmpdir(), "wf-mgmt-"));
  const sock = join(dir, "mgmt");
  const quiet = join(dir, "quiet");
  const seen: string[] = [];
  const servers: Server[] = [];
  beforeAll(() => {
    servers.push(fakeWirefilter(sock, seen), fakeWirefilter(quiet, [], { silent: true }));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });

  it("parses status lines and data blocks", () => {
    expect(parseReply("1000 Success\n\n")).toEqual({ code: 1000, text: "Success", data: [] });
    expect(parseReply("0000 DATA END WITH '.'\na\nb\n.\n1000 Success\n")).toEqual({
      code: 1000,
      text: "Success",
      data: ["a", "b"],
    });
    expect(parseReply("0000 DATA END WITH '.'\na\n")).toBeUndefined();
  });

  it("turns an impairment into per-direction commands (the guest's frames go R->L), down cutting both", () => {
    expect(impairmentCommands({ delayMs: 200, jitterMs: 20, lossPercent: 12.5, rateKbit: 1000 })).toEqual([
      "loss LR0",
      "loss RL12.5",
      "delay LR0",
      "delay RL200+20",
      "dup LR0",
      "dup RL0",
      "bandwidth LR0",
      "bandwidth RL125000",
    ]);
    const down = impairmentCommands({ down: true, lossPercent: 5 });
    expect(down.slice(0, 2)).toEqual(["loss LR100", "loss RL100"]);
    // No impairment clears every setting.
    expect(impairmentCommands(undefined)).toContain("delay RL0");
    expect(impairmentCommands(undefined)).toContain("loss RL0");
  });

  it("sends each command after the prompt and reads its answer", async () => {
    seen.length = 0;
    await applyImpairment(sock, { delayMs: 50, duplicatePercent: 1 });
    expect(seen).toEqual(impairmentCommands({ delayMs: 50, duplicatePercent: 1 }));
    expect(await showInfo(sock)).toMatchObject({
      Loss: "L->R 0+0U   R->L 10+0U",
      Delay: "L->R 0+0U   R->L 200+0U",
    });
  });

  it("a refused command throws naming it and wirefilter's answer", async () => {
    const m = await WirefilterMgmt.open(sock);
    try {
      await expect(m.send("bogus 1")).rejects.toThrow(/bogus 1.*1038 Function not implemented/);
      await expect(m.send("delay 1\nshutdown")).rejects.toThrow(/line break/);
    } finally {
      m.close();
    }
  });

  it("a silent or missing socket fails within its deadline, naming the socket", async () => {
    const m = await WirefilterMgmt.open(quiet, 300);
    try {
      await expect(m.send("delay 1")).rejects.toThrow(/did not answer "delay 1" within 300 ms/);
    } finally {
      m.close();
    }
    await expect(WirefilterMgmt.open(join(dir, "none"))).rejects.toThrow(/none/);
  });
});
