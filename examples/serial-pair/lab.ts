import * as pulumi from "@pulumi/pulumi";
import { Disk, Instance, Kernel, RootFilesystem, SerialLink } from "umlfleet";

// root's password on the console server is "serialpass" (a SHA-512 crypt hash: busybox mkpasswd -m sha512).
const shadow =
  "root:$6$umlfleetlabsalt$LHjdU.4Irb3CnkcKLS4kg8X37s0PSLcVLysok/AImQjym5hV9mwaGVel/8q0qsOG2RGj4cbpUMKicTJDHZGDa/:19000:0:99999:7:::\n";

/**
 * `serial-login TTY USER PASSWORD COMMAND`: log in over a serial line, run
 * one command, print everything that came back. What a person at a terminal
 * would do, as a script: wait for each prompt, then answer it.
 */
const serialLogin = `#!/bin/sh
tty=$1 user=$2 password=$3 command=$4
out=/tmp/serial-login.$$
: >"$out"
exec 3<>"$tty"
cat <&3 >>"$out" &
reader=$!
# expect PATTERN: wait (15 s at most) until PATTERN comes after what was there at the last answer.
seen=0
expect() {
  n=0
  until tail -c +$((seen + 1)) "$out" | grep -q "$1"; do
    n=$((n + 1))
    [ "$n" -gt 150 ] && { echo "serial-login: no '$1' from $tty"; cat "$out"; kill "$reader"; exit 1; }
    sleep 0.1
  done
}
answer() {
  seen=$(wc -c <"$out")
  printf '%s\\n' "$1" >&3
}
answer ""
expect 'login:'
answer "$user"
expect 'Password:'
answer "$password"
expect '# \\|Login incorrect'
tail -c +$((seen + 1)) "$out" | grep -q 'Login incorrect' && { cat "$out"; kill "$reader"; exit 1; }
answer "$command; exit"
expect 'login:'
kill "$reader"
cat "$out"
rm -f "$out"
`;

/**
 * Two machines with no network, joined by a null-modem cable between their
 * second serial lines (ttyS1): the console server runs getty on its end, and
 * the terminal logs in through it.
 */
export function lab() {
  const kernel = new Kernel("serial-kernel", { build: {} });
  const base = new RootFilesystem("serial-base", { source: { kind: "busybox", sizeMiB: 32 } });

  const server = new Instance("console-server", {
    kernel,
    rootDisk: new Disk("console-server-root", { kind: "overlay", base }),
    files: [{ path: "/etc/shadow", content: shadow, mode: 0o600 }],
    // A getty on ttyS1, started again after each logout (as inittab's respawn would).
    startup: "(while :; do getty -L 115200 ttyS1 vt100; done) </dev/null >/dev/null 2>&1 &\n",
  });

  const terminal = new Instance("terminal", {
    kernel,
    rootDisk: new Disk("terminal-root", { kind: "overlay", base }),
    files: [{ path: "/usr/bin/serial-login", content: serialLogin, mode: 0o755 }],
  });

  new SerialLink("null-modem", {
    a: { instance: server, line: 1 },
    b: { instance: terminal, line: 1 },
  });

  return { machines: pulumi.all([server.name, terminal.name]) };
}
