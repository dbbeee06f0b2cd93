import { spawn } from "node:child_process";
import { closeSync, openSync, rmSync, constants } from "node:fs";
import { UmlfleetError } from "../errors";
import type { SerialLinkSpec } from "../spec";
import type { Instances } from "./instance";
import { identify, isAlive, killGroup, type ProcessIdentity } from "../process";
import { claimed, refuseForeign, type Owned } from "./owners";
import { readJson, STATE_SCHEMA_VERSION, writeJson, type StateDir } from "./state";

export interface SerialLinkRecord extends Owned {
  schemaVersion: number;
  spec: SerialLinkSpec;
  /** a->b and b->a relays. */
  relays: ProcessIdentity[];
}

/**
 * A null-modem cable between two guests' serial lines. Each serial line is a
 * pair of FIFOs in its instance folder (the guest reads `.in`, writes `.out`);
 * a link is two detached `cat` relays, a.out -> b.in and b.out -> a.in. The
 * relays hold the FIFOs open read-write, so the cable survives either guest
 * stopping or restarting, and bytes sent while one end is down wait in the pipe.
 * (A pty pair would need both sandboxes to share the host's /dev/pts, which
 * would let a guest reach every terminal on the host through hostfs.)
 */
export class SerialLinks {
  constructor(
    private readonly state: StateDir,
    private readonly instances: Instances,
  ) {}

  get(name: string): SerialLinkRecord | undefined {
    return readJson<SerialLinkRecord>(this.state.linkRecord(name));
  }

  isUp(r: SerialLinkRecord): boolean {
    return r.relays.length === 2 && r.relays.every((p) => isAlive(p));
  }

  /** Links that use a line of `instance`. */
  linksOf(instance: string): string[] {
    return this.state.list("links").filter((l) => {
      const r = this.get(l);
      return r && (r.spec.a.instance === instance || r.spec.b.instance === instance);
    });
  }

  /** Start the link's relays unless they run; another stack's link is refused (owners.ts). */
  async ensure(spec: SerialLinkSpec, owner?: string): Promise<SerialLinkRecord> {
    const existing = this.get(spec.name);
    refuseForeign("serial link", spec.name, existing, owner, "create", this.state.root);
    const owners = claimed(existing, owner);
    for (const end of ["a", "b"] as const) {
      const { instance, line } = spec[end];
      const inst = this.instances.get(instance);
      if (!inst) {
        throw new UmlfleetError(
          "UMLFLEET_NOT_FOUND",
          `/${end}/instance: instance ${JSON.stringify(instance)} does not exist`,
          {
            field: `/${end}/instance`,
            value: instance,
          },
        );
      }
      // A cable into another stack's guest would read and write its console lines.
      refuseForeign("instance", instance, inst, owner, "change", this.state.root);
      if (line >= inst.spec.serialLines) {
        throw new UmlfleetError(
          "UMLFLEET_INVALID_SPEC",
          `/${end}/line: instance ${instance} has ${inst.spec.serialLines} serial lines; line ${line} does not exist`,
          { field: `/${end}/line`, value: line },
        );
      }
      for (const other of this.state.list("links")) {
        if (other === spec.name) continue;
        const o = this.get(other)!.spec;
        if ([o.a, o.b].some((e) => e.instance === instance && e.line === line)) {
          throw new UmlfleetError(
            "UMLFLEET_CONFLICT",
            `/${end}: ${instance} ttyS${line} is already joined by link ${other}`,
            {
              field: `/${end}`,
              value: spec[end],
            },
          );
        }
      }
    }
    if (existing) {
      if (JSON.stringify(existing.spec) !== JSON.stringify(spec)) {
        throw new UmlfleetError("UMLFLEET_CONFLICT", `serial link ${spec.name} exists with other ends`, {
          name: spec.name,
        });
      }
      if (this.isUp(existing)) {
        if (JSON.stringify(owners) === JSON.stringify(existing.owners)) return existing;
        const adopted = { ...existing, ...(owners ? { owners } : {}) };
        writeJson(this.state.linkRecord(spec.name), adopted);
        return adopted;
      }
      for (const p of existing.relays) await killGroup(p);
    }
    const fifo = (end: "a" | "b", dir: "in" | "out") =>
      this.instances.fifo(spec[end].instance, `ttyS${spec[end].line}`, dir);
    const relays = [
      this.relay(fifo("a", "out"), fifo("b", "in")),
      this.relay(fifo("b", "out"), fifo("a", "in")),
    ];
    const record: SerialLinkRecord = {
      schemaVersion: STATE_SCHEMA_VERSION,
      spec,
      relays,
      ...(owners ? { owners } : {}),
    };
    writeJson(this.state.linkRecord(spec.name), record);
    return record;
  }

  async remove(name: string, owner?: string): Promise<void> {
    const r = this.get(name);
    if (!r) return;
    refuseForeign("serial link", name, r, owner, "remove", this.state.root);
    for (const p of r.relays) await killGroup(p);
    rmSync(this.state.linkRecord(name), { force: true });
  }

  private relay(from: string, to: string): ProcessIdentity {
    const inFd = openSync(from, constants.O_RDWR);
    const outFd = openSync(to, constants.O_RDWR);
    try {
      const child = spawn("cat", [], { detached: true, stdio: [inFd, outFd, "ignore"] });
      child.unref();
      const id = child.pid ? identify(child.pid) : null;
      if (!id)
        throw new UmlfleetError("UMLFLEET_COMMAND_FAILED", `could not start the relay ${from} -> ${to}`, {
          from,
          to,
        });
      return id;
    } finally {
      closeSync(inFd);
      closeSync(outFd);
    }
  }
}
