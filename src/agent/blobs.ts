import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
} from "node:fs";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { UmlfleetError } from "../errors";

/**
 * Files the provider sends to this host by content (a base image or a kernel
 * that lives on the machine running Pulumi): `<stateDir>/uploads/<sha256>`.
 *   GET    /v1/blobs/<sha256>  -> {result: {path, sizeBytes}} or 404
 *   PUT    /v1/blobs/<sha256>  the bytes as the body; kept only when they hash to <sha256>
 *   DELETE /v1/blobs/<sha256>  -> {}
 * A blob is written to a fresh file and renamed into place once its hash is
 * checked, so a cut connection leaves no half blob under its name.
 */
export const BLOB_PREFIX = "/v1/blobs/";

/** A blob's size bound: the largest base image umlfleet makes is far smaller. */
export const MAX_BLOB_BYTES = 64 * 1024 ** 3;

export interface BlobInfo {
  path: string;
  sizeBytes: number;
}

const SHA = /^[0-9a-f]{64}$/;

export async function handleBlob(
  req: IncomingMessage,
  stateDir: string,
  sha: string,
): Promise<BlobInfo | undefined> {
  if (!SHA.test(sha))
    throw new UmlfleetError(
      "UMLFLEET_UNKNOWN_ROUTE",
      "a blob is named by its sha256: 64 lower-case hex digits",
      {
        route: `${BLOB_PREFIX}${sha.slice(0, 80)}`,
      },
    );
  const dir = join(stateDir, "uploads");
  const path = join(dir, sha);
  switch (req.method) {
    case "GET": {
      if (!existsSync(path))
        throw new UmlfleetError("UMLFLEET_NOT_FOUND", `no blob ${sha} on this host`, { sha });
      return { path, sizeBytes: statSync(path).size };
    }
    case "DELETE":
      rmSync(path, { force: true });
      return undefined;
    case "PUT":
      return putBlob(req, dir, path, sha);
    default:
      throw new UmlfleetError(
        "UMLFLEET_METHOD_NOT_ALLOWED",
        `${BLOB_PREFIX}<sha256> takes GET, PUT or DELETE`,
        {
          method: String(req.method).slice(0, 16),
        },
      );
  }
}

async function putBlob(req: IncomingMessage, dir: string, path: string, sha: string): Promise<BlobInfo> {
  if (Number(req.headers["content-length"] ?? 0) > MAX_BLOB_BYTES)
    throw new UmlfleetError("UMLFLEET_REQUEST_TOO_LARGE", `a blob is at most ${MAX_BLOB_BYTES} bytes`, {
      maxBytes: MAX_BLOB_BYTES,
    });
  const made = !existsSync(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const part = join(dir, `.${sha}.${randomBytes(4).toString("hex")}.part`);
  const hash = createHash("sha256");
  let size = 0;
  try {
    await pipeline(
      req,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const c of chunks) {
          size += c.length;
          if (size > MAX_BLOB_BYTES)
            throw new UmlfleetError(
              "UMLFLEET_REQUEST_TOO_LARGE",
              `a blob is at most ${MAX_BLOB_BYTES} bytes`,
            );
          hash.update(c);
          yield c;
        }
      },
      createWriteStream(part, { mode: 0o600 }),
    );
    const got = hash.digest("hex");
    if (got !== sha)
      throw new UmlfleetError(
        "UMLFLEET_BAD_REQUEST",
        `the blob's bytes hash to ${got}, not ${sha}; nothing was kept`,
        {
          sha,
          got,
        },
      );
    // Read-only; executable, as a kernel must be.
    chmodSync(part, 0o555);
    renameSync(part, path);
    return { path, sizeBytes: size };
  } catch (e) {
    // A refused blob leaves nothing, not even the folder it would have gone to.
    rmSync(part, { force: true });
    if (made) rmdirIfEmpty(dir); // another upload may be using it meanwhile

    throw e;
  }
}

function rmdirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* not empty, or gone */
  }
}
