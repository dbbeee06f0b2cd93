#!/bin/bash
# Baseline for benchmark 1: one bare linux.uml, no sandbox, no runtime.
# usage: bare-boot.sh <kernel> <base.img> <workdir> [extra kernel args...]
# Prints "PID <pid>", "INIT <ns from launch to the kernel's "Run ... as init process" line>",
# then "READY <ns from launch to marker seen>" (or "EXITED"/"TIMEOUT"). The console is polled every 10 ms.
# The guest is left running in its own process group (pgid = pid): the caller kills it.
set -u
kernel=$1 base=$2 dir=$3
shift 3
# Guest RAM is a file in $TMPDIR: BARE_TMPDIR (a tmpfs, like the runtime's sandbox /tmp) if given.
tmp=${BARE_TMPDIR:-$dir/tmp}
mkdir -p "$dir/uml" "$tmp"
rm -rf "$dir/cow" "$dir/uml/b"
: >"$dir/console.log"
# The COW is made before the clock starts (the runtime also makes its overlay before createInstance).
uml_mkcow -f "$dir/cow" "$base" >/dev/null 2>&1 || rm -f "$dir/cow"
# The same guest as umlfleet's: a control line (con1) and two serial lines on FIFOs,
# which umlfleet's init sets up (stty, a control loop): only the host side differs.
rm -f "$dir"/c.* "$dir"/s[01].*
mkfifo "$dir/c.in" "$dir/c.out" "$dir/s0.in" "$dir/s0.out" "$dir/s1.in" "$dir/s1.out"
t0=$(date +%s%N)
TMPDIR="$tmp" setsid "$kernel" "ubd0=$dir/cow,$base" root=/dev/ubda rw mem=64M umid=b "uml_dir=$dir/uml" \
  con=none con0=null,fd:1 con1=fd:3,fd:4 ssl=none ssl0=fd:5,fd:6 ssl1=fd:7,fd:8 init=/umlfleet/init \
  umlfleet.serial=2 umlfleet.hostname=bare "$@" </dev/null >"$dir/console.log" 2>&1 \
  3<>"$dir/c.in" 4<>"$dir/c.out" 5<>"$dir/s0.in" 6<>"$dir/s0.out" 7<>"$dir/s1.in" 8<>"$dir/s1.out" &
pid=$!
echo "PID $pid"
deadline=$((t0 + ${BARE_TIMEOUT_S:-60} * 1000000000))
init=
while ! grep -q UMLFLEET-READY "$dir/console.log"; do
  if [ -z "$init" ] && grep -q "as init process" "$dir/console.log"; then
    init=$(($(date +%s%N) - t0))
    echo "INIT $init"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then echo EXITED; exit 1; fi
  if [ "$(date +%s%N)" -gt "$deadline" ]; then echo TIMEOUT; exit 1; fi
  sleep 0.01
done
[ -z "$init" ] && echo "INIT $(($(date +%s%N) - t0))"
echo "READY $(($(date +%s%N) - t0))"
