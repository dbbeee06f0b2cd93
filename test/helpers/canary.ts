import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A folder of host files a guest must never be able to change: a few files,
 * a sub-folder, a file only its owner may read. `snapshot()` records every
 * entry's type, mode, size and content (or link target), so a comparison
 * catches a file deleted, replaced by a link, truncated, chmod'ed or rewritten.
 */
export class Canary {
  constructor(readonly dir: string) {
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "victim"), "canary: must never change\n");
    writeFileSync(join(dir, "secret"), "canary secret\n", { mode: 0o600 });
    writeFileSync(join(dir, "sub", "deep"), "deep canary\n");
  }

  snapshot(): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (d: string, rel: string) => {
      for (const e of readdirSync(d).sort()) {
        const p = join(d, e);
        const r = `${rel}${e}`;
        const st = lstatSync(p);
        const kind = st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : "file";
        const body = st.isSymbolicLink()
          ? readlinkSync(p)
          : st.isFile()
            ? createHash("sha256").update(readFileSync(p)).digest("hex")
            : "";
        out[r] = `${kind} ${(st.mode & 0o7777).toString(8)} ${st.size} ${st.ino} ${body}`;
        if (kind === "dir") walk(p, `${r}/`);
      }
    };
    walk(this.dir, "");
    return out;
  }
}
