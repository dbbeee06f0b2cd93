import { randomBytes } from "node:crypto";
import { openSync, constants } from "node:fs";
import { Socket } from "node:net";
import { UmlfleetError } from "../errors";

export interface ExecResult {
  exitCode: number;
  /** stdout and stderr of the script, interleaved. */
  output: string;
}

/** The longest script the guest's tty line discipline takes in one line (4095 bytes, base64). */
export const MAX_SCRIPT_BYTES = 3000;

/**
 * The control channel to umlfleet's init: guest /dev/tty1 (con1) is joined to
 * two FIFOs in the instance folder. The host writes `<id> <base64 script>\n`;
 * the guest answers with the script's output (base64) between
 * `@@UMLFLEET-BEGIN <id>` and `@@UMLFLEET-END <id> <exit code>`. Callers must
 * hold the instance's exec lock: one script at a time.
 */
export async function execOverChannel(
  fifoIn: string,
  fifoOut: string,
  script: string,
  timeoutMs: number,
  instance: string,
): Promise<ExecResult> {
  const body = Buffer.from(script, "utf8");
  if (body.length > MAX_SCRIPT_BYTES) {
    throw new UmlfleetError(
      "UMLFLEET_INVALID_SPEC",
      `script is ${body.length} bytes; at most ${MAX_SCRIPT_BYTES}`,
      {
        field: "script",
      },
    );
  }
  const id = randomBytes(6).toString("hex");
  // O_RDWR: opening a FIFO this way never blocks, and never sees EOF while the guest is down.
  const reader = new Socket({
    fd: openSync(fifoOut, constants.O_RDWR | constants.O_NONBLOCK),
    readable: true,
    writable: false,
  });
  const writer = new Socket({
    fd: openSync(fifoIn, constants.O_RDWR | constants.O_NONBLOCK),
    readable: false,
    writable: true,
  });
  try {
    return await new Promise<ExecResult>((resolve, reject) => {
      let buf = "";
      const timer = setTimeout(() => {
        reject(
          new UmlfleetError(
            "UMLFLEET_EXEC_TIMEOUT",
            `script in ${instance} did not finish within ${timeoutMs} ms`,
            {
              instance,
              timeoutMs,
            },
          ),
        );
      }, timeoutMs);
      reader.setEncoding("utf8");
      reader.on("data", (chunk: string) => {
        buf += chunk;
        const end = new RegExp(`@@UMLFLEET-END ${id} (\\d+)`).exec(buf);
        if (!end) return;
        const begin = buf.indexOf(`@@UMLFLEET-BEGIN ${id}`);
        const b64 = buf.slice(buf.indexOf("\n", begin) + 1, end.index).replace(/\s+/g, "");
        clearTimeout(timer);
        resolve({ exitCode: Number(end[1]), output: Buffer.from(b64, "base64").toString("utf8") });
      });
      reader.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      writer.write(`${id} ${body.toString("base64")}\n`);
    });
  } finally {
    reader.destroy();
    writer.destroy();
  }
}
