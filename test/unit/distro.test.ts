import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { aptMirrors, debianKey, debianSources, parseAptSources } from "../../src/host/distro";
import { readTarEntries } from "../../src/host/tar";

const tmp = mkdtempSync(join(tmpdir(), "uf-distro-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** An /etc with the given apt files and os-release. */
function etc(files: Record<string, string>, codename = "bookworm"): string {
  const dir = mkdtempSync(join(tmp, "etc-"));
  mkdirSync(join(dir, "apt", "sources.list.d"), { recursive: true });
  writeFileSync(join(dir, "os-release"), `ID=debian\nVERSION_CODENAME=${codename}\n`);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, "apt", name), text);
  return dir;
}

describe("the host's apt mirror", () => {
  it("reads one-line entries, skipping comments and options", () => {
    expect(
      parseAptSources(
        "# deb http://old.example/debian buster main\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\ndeb-src http://m.example/debian bookworm main\n",
        false,
      ),
    ).toEqual([{ uri: "http://m.example/debian", suites: ["bookworm"] }]);
  });

  it("reads deb822 stanzas, skipping disabled and source-only ones", () => {
    const text = [
      "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main",
      "Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: bookworm",
      "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm",
    ].join("\n\n");
    expect(parseAptSources(text, true)).toEqual([
      { uri: "http://deb.debian.org/debian", suites: ["bookworm", "bookworm-updates"] },
    ]);
  });

  it("finds the archive and security mirrors; other vendors' entries and disabled files are left alone", () => {
    const dir = etc({
      "sources.list.d/debian.sources":
        "Types: deb\nURIs: http://deb.debian.org/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n\n" +
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n",
      "sources.list.d/vendor.list": "deb https://packages.vendor.example/apt cloud-sdk-bookworm main\n",
      "sources.list.d/old.list.disabled": "deb http://evil.example/debian bookworm main\n",
    });
    const m = aptMirrors(dir);
    expect(m.archive).toBe("http://deb.debian.org/debian");
    expect(m.security).toBe("http://deb.debian.org/debian-security");
    expect(m.files.some((f) => f.endsWith("old.list.disabled"))).toBe(false);
    expect(debianSources("trixie", m)).toBe(
      "deb http://deb.debian.org/debian trixie main\n" +
        "deb http://deb.debian.org/debian trixie-updates main\n" +
        "deb http://deb.debian.org/debian-security trixie-security main\n",
    );
  });

  it("refuses a host without a Debian mirror, saying what it read", () => {
    const dir = etc({ "sources.list": "deb http://archive.ubuntu.com/ubuntu noble main\n" });
    expect(() => aptMirrors(dir)).toThrow(/UMLFLEET_HOST_UNSUPPORTED|no Debian mirror found.*sources\.list/);
  });

  it("does not take a mirror URI that could carry an option", () => {
    const dir = etc({ "sources.list": "deb http://m.example/debian,--foo bookworm main\n" });
    expect(() => aptMirrors(dir)).toThrow(/no Debian mirror found/);
  });
});

describe("the cache key of a Debian tree", () => {
  const src = "deb http://deb.debian.org/debian bookworm main\n";
  const base = { kind: "debian", suite: "bookworm" } as const;

  it("is the same for equal inputs and for the default variant spelled out", () => {
    expect(debianKey(base, src, "amd64")).toBe(debianKey({ ...base, variant: "minbase" }, src, "amd64"));
  });

  it("changes with what the tree depends on, not with what goes into the image afterwards", () => {
    const k = debianKey(base, src, "amd64");
    expect(debianKey({ ...base, suite: "trixie" }, src, "amd64")).not.toBe(k);
    expect(debianKey({ ...base, packages: ["openssh-server"] }, src, "amd64")).not.toBe(k);
    expect(debianKey({ ...base, variant: "apt" }, src, "amd64")).not.toBe(k);
    expect(debianKey(base, src.replace("deb.debian.org", "mirror.example"), "amd64")).not.toBe(k);
    expect(debianKey(base, src, "arm64")).not.toBe(k);
    expect(
      debianKey({ ...base, sizeMiB: 2048, files: [{ path: "/etc/motd", content: "hi" }] }, src, "amd64"),
    ).toBe(k);
  });
});

describe("tar headers", () => {
  it("give each member's owner, mode, type and link target, long names included", () => {
    const tree = mkdtempSync(join(tmp, "tree-"));
    const long = `${"d".repeat(90)}/${"f".repeat(90)}`;
    mkdirSync(join(tree, "d".repeat(90)));
    writeFileSync(join(tree, long), "x");
    writeFileSync(join(tree, "suid"), "x", { mode: 0o4755 });
    symlinkSync("/run", join(tree, "run-link"));
    mkdirSync(join(tree, "dir"));
    const tarFile = join(tmp, "t.tar");
    for (const format of ["gnu", "pax"]) {
      execFileSync("tar", [
        "-c",
        `--format=${format}`,
        "-f",
        tarFile,
        "-C",
        tree,
        "--owner=1234567",
        "--group=42",
        "--numeric-owner",
        ".",
      ]);
      const byPath = new Map(readTarEntries(tarFile).map((e) => [e.path, e]));
      expect(byPath.get(long)).toMatchObject({ type: "file", uid: 1234567, gid: 42 });
      expect(byPath.get("suid")).toMatchObject({ type: "file", mode: 0o4755 });
      expect(byPath.get("run-link")).toMatchObject({ type: "symlink", linkTarget: "/run" });
      expect(byPath.get("dir")).toMatchObject({ type: "dir" });
      expect(byPath.get("")).toMatchObject({ type: "dir" });
    }
  });
});
