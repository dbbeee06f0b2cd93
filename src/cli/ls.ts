import { LocalRuntime } from "../host/runtime";
import { parseCommon } from "./options";
import type { Verb } from "./verb";

/**
 * `umlfleet ls [--state-dir DIR] [--json]`: the instances of a state folder
 * with state, addresses, memory and uptime; networks and links by name.
 */
export const ls: Verb = {
  usage: "ls [--state-dir DIR] [--json]",
  summary: "list instances (state, addresses, uptime), networks and serial links",
  async run(args, io) {
    const o = parseCommon("ls", this.usage, args, io, ["--json"]);
    if (typeof o === "number") return o;
    const rt = new LocalRuntime({ stateDir: o.stateDir });
    const inv = await rt.inventory();
    const instances = [];
    for (const name of inv.instances) {
      const i = await rt.instanceInfo(name);
      if (!i) continue;
      instances.push({
        name,
        state: i.state,
        pid: i.pid,
        uptimeSec:
          i.state === "running" && i.startedAtMs
            ? Math.round((Date.now() - i.startedAtMs) / 1000)
            : undefined,
        memoryMiB: i.memoryMiB,
        addresses: i.nics.map((n) => ({ device: n.device, network: n.network, ipv4: n.ipv4, mac: n.mac })),
      });
    }
    if (o.flags.has("--json")) {
      io.out(
        `${JSON.stringify({ stateDir: o.stateDir, instances, networks: inv.networks, links: inv.links }, null, 2)}\n`,
      );
      return 0;
    }
    const rows = [["NAME", "STATE", "UPTIME", "MEMORY", "ADDRESSES"]];
    for (const i of instances)
      rows.push([
        i.name,
        i.state,
        i.uptimeSec === undefined ? "-" : `${i.uptimeSec}s`,
        `${i.memoryMiB}MiB`,
        i.addresses.map((a) => `${a.device}:${a.network}${a.ipv4 ? `=${a.ipv4}` : ""}`).join(" ") || "-",
      ]);
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows)
      io.out(
        `${r
          .map((cell, c) => cell.padEnd(widths[c]!))
          .join("  ")
          .trimEnd()}\n`,
      );
    if (inv.networks.length) io.out(`networks: ${inv.networks.join(", ")}\n`);
    if (inv.links.length) io.out(`serial links: ${inv.links.join(", ")}\n`);
    return 0;
  },
};
