import { planInstanceChange, planGroupChange, type GroupApplyResult } from "../../src/change-plan";
import { UmlfleetError } from "../../src/errors";
import type {
  BaseInfo,
  DiskInfo,
  HostDriver,
  InstanceInfo,
  Inventory,
  KernelInfo,
  MemberInfo,
  NetworkInfo,
  SerialLinkInfo,
} from "../../src/host/driver";
import type { ExecResult } from "../../src/host/guest-channel";
import type { HostFact } from "../../src/host/host-facts";
import type {
  BaseSpec,
  DiskSpec,
  InstanceGroupSpec,
  KernelSpec,
  NetworkSpec,
  SerialLinkSpec,
} from "../../src/spec";
import { memberInstanceSpec, memberRootDisk, SpecValidator } from "../../src/validation";

/**
 * A HostDriver that keeps everything in memory: the provider's logic (check,
 * diff, plans, outputs, partial failures) tested without UML. It validates
 * specs like the real one and plans changes with the same pure functions;
 * `failNext` makes the next call of a method throw after it took effect.
 */
export class FakeDriver implements HostDriver {
  readonly bases = new Map<string, BaseSpec>();
  readonly disks = new Map<string, DiskSpec>();
  readonly networks = new Map<string, NetworkSpec & { running: boolean }>();
  readonly links = new Map<string, SerialLinkSpec>();
  readonly instances = new Map<
    string,
    { spec: Record<string, unknown>; running: boolean; bootCount: number }
  >();
  readonly calls: string[] = [];
  private readonly validator = new SpecValidator("/fake/linux");
  private failing: string | undefined;

  constructor(readonly stateDir: string) {}

  /** The next call of `method` throws UMLFLEET_BOOT_FAILED after doing its work. */
  failNext(method: string): void {
    this.failing = method;
  }

  private call(method: string): void {
    this.calls.push(method);
  }
  private maybeFail(method: string): void {
    if (this.failing !== method) return;
    this.failing = undefined;
    throw new UmlfleetError("UMLFLEET_BOOT_FAILED", `fake: ${method} failed after taking effect`, {});
  }

  hostFacts(): Promise<HostFact[]> {
    return Promise.resolve([]);
  }
  inventory(): Promise<Inventory> {
    return Promise.resolve({
      bases: [...this.bases.keys()],
      disks: [...this.disks.keys()],
      networks: [...this.networks.keys()],
      instances: [...this.instances.keys()],
      links: [...this.links.keys()],
    });
  }

  async ensureKernel(spec: KernelSpec): Promise<KernelInfo> {
    this.call("ensureKernel");
    const s = this.validator.validate("kernel", spec);
    return { path: s.path ?? "/fake/built/linux", sha256: "f".repeat(64), version: "6.1.0-fake" };
  }
  async kernelInfo(path: string): Promise<KernelInfo | undefined> {
    return { path, sha256: "f".repeat(64), version: "6.1.0-fake" };
  }

  async ensureBase(spec: BaseSpec): Promise<BaseInfo> {
    this.call("ensureBase");
    const s = this.validator.validate("base", spec);
    this.bases.set(s.name, s);
    return (await this.baseInfo(s.name))!;
  }
  async baseInfo(name: string): Promise<BaseInfo | undefined> {
    return this.bases.has(name)
      ? {
          name,
          imagePath: `${this.stateDir}/images/${name}.img`,
          imageSha: "b".repeat(64),
          sizeBytes: 1 << 25,
          drift: "",
        }
      : undefined;
  }
  async removeBase(name: string): Promise<void> {
    this.call("removeBase");
    this.bases.delete(name);
  }

  async ensureDisk(spec: DiskSpec): Promise<DiskInfo> {
    this.call("ensureDisk");
    const s = this.validator.validate("disk", spec);
    if (s.kind === "overlay" && !this.bases.has(s.base!))
      throw new UmlfleetError("UMLFLEET_NOT_FOUND", `/base: base ${JSON.stringify(s.base)} does not exist`, {
        field: "/base",
      });
    this.disks.set(s.name, s);
    return (await this.diskInfo(s.name))!;
  }
  async diskInfo(name: string): Promise<DiskInfo | undefined> {
    const d = this.disks.get(name);
    return (
      d && { name, path: `${this.stateDir}/disks/${name}.img`, sizeBytes: 1 << 25, diskId: `id-${name}` }
    );
  }
  async removeDisk(name: string): Promise<void> {
    this.call("removeDisk");
    this.disks.delete(name);
  }

  async ensureNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    this.call("ensureNetwork");
    const s = this.validator.validate("network", spec);
    this.networks.set(s.name, { ...s, running: true });
    return (await this.networkInfo(s.name))!;
  }
  async networkInfo(name: string): Promise<NetworkInfo | undefined> {
    const n = this.networks.get(name);
    return (
      n && {
        name,
        switchDir: `${this.stateDir}/switches/${name}`,
        running: n.running,
        ...(n.running ? { pid: 4242 } : {}),
      }
    );
  }
  async removeNetwork(name: string): Promise<void> {
    this.call("removeNetwork");
    this.networks.delete(name);
  }

  async ensureSerialLink(spec: SerialLinkSpec): Promise<SerialLinkInfo> {
    this.call("ensureSerialLink");
    const s = this.validator.validate("serial-link", spec);
    this.links.set(s.name, s);
    return { name: s.name, up: true };
  }
  async serialLinkInfo(name: string): Promise<SerialLinkInfo | undefined> {
    return this.links.has(name) ? { name, up: true } : undefined;
  }
  async removeSerialLink(name: string): Promise<void> {
    this.call("removeSerialLink");
    this.links.delete(name);
  }

  async createInstance(spec: unknown): Promise<InstanceInfo> {
    this.call("createInstance");
    const s = this.validator.validate("instance", spec);
    if (!this.disks.has(s.rootDisk))
      throw new UmlfleetError(
        "UMLFLEET_NOT_FOUND",
        `/rootDisk: disk ${JSON.stringify(s.rootDisk)} does not exist`,
        {
          field: "/rootDisk",
        },
      );
    const existing = this.instances.get(s.name);
    this.instances.set(s.name, { spec: s as never, running: true, bootCount: existing?.bootCount ?? 1 });
    this.maybeFail("createInstance");
    return (await this.instanceInfo(s.name))!;
  }
  async planInstance(spec: unknown) {
    const s = this.validator.validate("instance", spec);
    return planInstanceChange(this.instances.get(s.name)!.spec as never, s);
  }
  async updateInstance(spec: unknown) {
    this.call("updateInstance");
    const s = this.validator.validate("instance", spec);
    const i = this.instances.get(s.name)!;
    const plan = planInstanceChange(i.spec as never, s);
    if (plan.kind === "replace")
      throw new UmlfleetError("UMLFLEET_CONFLICT", `instance ${s.name}: needs a new instance`, {});
    this.instances.set(s.name, {
      spec: s as never,
      running: true,
      bootCount: i.bootCount + (plan.kind === "restart" || !i.running ? 1 : 0),
    });
    return { plan, info: (await this.instanceInfo(s.name))! };
  }
  async startInstance(name: string): Promise<InstanceInfo> {
    const i = this.instances.get(name)!;
    if (!i.running) this.instances.set(name, { ...i, running: true, bootCount: i.bootCount + 1 });
    return (await this.instanceInfo(name))!;
  }
  async stopInstance(name: string): Promise<void> {
    const i = this.instances.get(name);
    if (i) i.running = false;
  }
  async removeInstance(name: string): Promise<void> {
    this.call("removeInstance");
    this.instances.delete(name);
  }
  async instanceInfo(name: string): Promise<InstanceInfo | undefined> {
    const i = this.instances.get(name);
    if (!i) return undefined;
    const s = i.spec as {
      memoryMiB: number;
      maxMemoryMiB?: number;
      nics?: { network: string; ipv4?: string }[];
    };
    return {
      name,
      state: i.running ? "running" : "stopped",
      ...(i.running ? { pid: 1000 + i.bootCount, startedAtMs: 1 } : {}),
      consoleLog: `${this.stateDir}/instances/${name}/console.log`,
      mconsoleSocket: `${this.stateDir}/instances/${name}/vm/u/mconsole`,
      serialLines: [],
      nics: (s.nics ?? []).map((n, index) => ({
        index,
        device: `eth${index}`,
        network: n.network,
        mac: "52:54:00:00:00:01",
        ...(n.ipv4 ? { ipv4: n.ipv4 } : {}),
      })),
      disks: [],
      memoryMiB: s.memoryMiB,
      maxMemoryMiB: s.maxMemoryMiB ?? s.memoryMiB,
      bootCount: i.bootCount,
      instanceId: `iid-${name}`,
    };
  }
  async exec(): Promise<ExecResult> {
    return { exitCode: 0, output: "" };
  }

  async applyGroup(spec: unknown, previous?: InstanceGroupSpec) {
    this.call("applyGroup");
    const s = this.validator.validate("instance-group", spec);
    const result: GroupApplyResult = previous
      ? planGroupChange(this.validator.validate("instance-group", previous), s)
      : { actions: Object.fromEntries(Object.keys(s.members).map((m) => [m, "create" as const])), plans: {} };
    for (const [m, a] of Object.entries(result.actions)) {
      if (a === "remove") this.instances.delete(m);
      else if (a !== "none") {
        this.disks.set(memberRootDisk(m), { name: memberRootDisk(m), kind: "overlay", base: s.base });
        const before = this.instances.get(m);
        this.instances.set(m, {
          spec: this.validator.validate("instance", memberInstanceSpec(s, m)) as never,
          running: true,
          bootCount: (before?.bootCount ?? 0) + (a === "update" && result.plans[m]?.kind === "live" ? 0 : 1),
        });
      }
    }
    return { result, members: await this.groupInfo(s) };
  }
  async removeGroup(spec: InstanceGroupSpec): Promise<void> {
    for (const m of Object.keys(spec.members)) this.instances.delete(m);
  }
  async groupInfo(spec: InstanceGroupSpec): Promise<Record<string, MemberInfo>> {
    const out: Record<string, MemberInfo> = {};
    for (const m of Object.keys(spec.members)) out[m] = (await this.instanceInfo(m)) ?? { state: "missing" };
    return out;
  }
}
