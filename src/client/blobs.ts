import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { request } from "node:http";
import { errorFromJSON, UmlfleetError } from "../errors";
import type { Transport } from "./transport";

/** Where a blob lives on the target host (src/agent/blobs.ts). */
export interface BlobInfo {
  path: string;
  sizeBytes: number;
}

/** sha256 of a local file, streamed. */
export async function fileSha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest("hex");
}

/**
 * Send a local file to the host by content: asks first, so a file already
 * there (from another resource, or an earlier run cut short after the
 * upload) is not sent again. Returns its path on the host.
 */
export async function uploadBlob(
  transport: Transport,
  localPath: string,
  sha?: string,
): Promise<BlobInfo & { sha256: string }> {
  const sha256 = sha ?? (await fileSha256(localPath));
  const have = await blobCall(transport, "GET", sha256).catch((e: unknown) => {
    if (e instanceof UmlfleetError && e.code === "UMLFLEET_NOT_FOUND") return undefined;
    throw e;
  });
  const info = have ?? (await blobCall(transport, "PUT", sha256, localPath));
  if (!info) throw new UmlfleetError("UMLFLEET_AGENT_PROTOCOL", `PUT /v1/blobs/${sha256}: no result`);
  return { ...info, sha256 };
}

export async function deleteBlob(transport: Transport, sha256: string): Promise<void> {
  await blobCall(transport, "DELETE", sha256);
}

function blobCall(
  transport: Transport,
  method: "GET" | "PUT" | "DELETE",
  sha: string,
  file?: string,
): Promise<BlobInfo | undefined> {
  return rawCall<BlobInfo>(transport, method, `/v1/blobs/${sha}`, file ? { file } : {});
}

/**
 * One request to an agent route outside the HostDriver's (blobs, cables):
 * a JSON body or a file's bytes; `result` of a 200, else the error the
 * agent sent, rebuilt.
 */
export function rawCall<T>(
  transport: Transport,
  method: "GET" | "PUT" | "DELETE" | "POST",
  path: string,
  body: { json?: unknown; file?: string },
): Promise<T | undefined> {
  const json = body.json === undefined ? undefined : Buffer.from(JSON.stringify(body.json));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...transport.requestOptions,
        method,
        path,
        headers: body.file
          ? { "Content-Type": "application/octet-stream", "Content-Length": statSync(body.file).size }
          : json
            ? { "Content-Type": "application/json", "Content-Length": json.length }
            : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            return reject(
              new UmlfleetError(
                "UMLFLEET_AGENT_PROTOCOL",
                `${method} ${path}: not JSON from ${transport.describe}`,
                {
                  body: text.slice(0, 200),
                },
              ),
            );
          }
          if (res.statusCode !== 200) return reject(errorFromJSON(parsed));
          resolve((parsed as { result?: T }).result);
        });
      },
    );
    req.on("error", (e) => {
      void (transport.explain?.(e, req.socket) ?? Promise.resolve(undefined)).then((typed) =>
        reject(typed ?? e),
      );
    });
    if (body.file) createReadStream(body.file).on("error", reject).pipe(req);
    else req.end(json);
  });
}
