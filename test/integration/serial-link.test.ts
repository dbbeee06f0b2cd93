import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHost } from "../helpers/runtime";

describe("serial link between two guests", () => {
  const host = new TestHost("serial");
  beforeAll(async () => {
    await host.lab(["a", "b"]);
    await host.rt.ensureSerialLink({
      name: "ab",
      a: { instance: "a", line: 1 },
      b: { instance: "b", line: 1 },
    });
  });
  afterAll(() => host.destroy());

  /** Listen on ttyS1 in `to`, write `text` to ttyS1 in `from`, return what `to` received. */
  const send = async (from: string, to: string, text: string, file: string) => {
    await host.sh(to, `cat /dev/ttyS1 > ${file} 2>&1 &`);
    await host.sh(from, `echo ${text} > /dev/ttyS1`);
    return host.sh(
      to,
      `i=0; while [ $i -lt 60 ]; do grep -q ${text} ${file} && break; sleep 0.5; i=$((i+1)); done; cat ${file}`,
    );
  };

  it("carries a line of text from one guest's ttyS1 to the other's", async () => {
    expect(await send("a", "b", "hello-over-serial", "/tmp/got")).toContain("hello-over-serial");
  });

  it("carries text the other way too", async () => {
    expect(await send("b", "a", "reply-from-b", "/tmp/got")).toContain("reply-from-b");
  });

  it("survives a restart of one end", async () => {
    await host.rt.restartInstance("b");
    expect(await send("a", "b", "after-restart", "/tmp/got2")).toContain("after-restart");
  });

  it("refuses a second link on a line already joined, naming the field", async () => {
    await expect(
      host.rt.ensureSerialLink({ name: "ab2", a: { instance: "a", line: 1 }, b: { instance: "b", line: 0 } }),
    ).rejects.toMatchObject({ code: "UMLFLEET_CONFLICT", message: expect.stringContaining("/a") });
  });
});
