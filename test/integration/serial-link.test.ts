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

  it("carries a line of text from one guest's ttyS1 to the other's", async () => {
    await host.sh("b", "cat /dev/ttyS1 > /tmp/got 2>&1 &");
    await host.sh("a", "echo hello-over-serial > /dev/ttyS1");
    const got = await host.sh(
      "b",
      "for i in 1 2 3 4 5 6 7 8 9 10; do grep -q hello /tmp/got && break; sleep 0.5; done; cat /tmp/got",
    );
    expect(got).toContain("hello-over-serial");
  });

  it("carries text the other way too", async () => {
    await host.sh("a", "cat /dev/ttyS1 > /tmp/got 2>&1 &");
    await host.sh("b", "echo reply-from-b > /dev/ttyS1");
    const got = await host.sh(
      "a",
      "for i in 1 2 3 4 5 6 7 8 9 10; do grep -q reply /tmp/got && break; sleep 0.5; done; cat /tmp/got",
    );
    expect(got).toContain("reply-from-b");
  });

  it("survives a restart of one end", async () => {
    await host.rt.restartInstance("b");
    await host.sh("b", "cat /dev/ttyS1 > /tmp/got2 2>&1 &");
    await host.sh("a", "echo after-restart > /dev/ttyS1");
    const got = await host.sh(
      "b",
      "for i in 1 2 3 4 5 6 7 8 9 10; do grep -q after /tmp/got2 && break; sleep 0.5; done; cat /tmp/got2",
    );
    expect(got).toContain("after-restart");
  });

  it("refuses a second link on a line already joined, naming the field", async () => {
    await expect(
      host.rt.ensureSerialLink({ name: "ab2", a: { instance: "a", line: 1 }, b: { instance: "b", line: 0 } }),
    ).rejects.toMatchObject({ code: "UMLFLEET_CONFLICT", message: expect.stringContaining("/a") });
  });
});
