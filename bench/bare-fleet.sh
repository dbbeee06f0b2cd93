#!/bin/bash
# Baseline for benchmark 2: the same fleet as the Pulumi program, started by a
# plain shell script: <nets> vde_switch daemons, <count> backgrounded linux.uml
# (guest i on network i % nets, one IPv4 each), consoles polled for the marker.
# usage: bare-fleet.sh <kernel> <base.img> <workdir> <count> <nets> [extra kernel args...]
# Prints "READY <ns> <ready count>" (or "TIMEOUT <ns> <ready count>"); guests and
# switches keep running (pids in <workdir>/pids, switch pid files <workdir>/sw*.pid).
set -u
kernel=$1 base=$2 dir=$3 count=$4 nets=$5
shift 5
mkdir -p "$dir"
: >"$dir/pids"
t0=$(date +%s%N)
for ((n = 0; n < nets; n++)); do
  vde_switch -d -s "$dir/sw$n" -p "$dir/sw$n.pid" -m 600 -n 64
done
for ((n = 0; n < nets; n++)); do
  while [ ! -S "$dir/sw$n/ctl" ]; do sleep 0.01; done
done
for ((i = 0; i < count; i++)); do
  g="$dir/g$i"
  # Guest RAM is a file in $TMPDIR: under BARE_TMPDIR_ROOT (a tmpfs, like the runtime's sandbox /tmp) if given.
  tmp=${BARE_TMPDIR_ROOT:+$BARE_TMPDIR_ROOT/g$i}
  tmp=${tmp:-$g/tmp}
  mkdir -p "$g/uml" "$tmp"
  n=$((i % nets))
  ip="10.$n.0.$((i / nets + 1))/24"
  mac=$(printf '52:54:00:be:%02x:%02x' "$n" "$i")
  # The same guest as umlfleet's: a control line (con1) and two serial lines on FIFOs,
  # which umlfleet's init sets up (stty, a control loop): only the host side differs.
  mkfifo "$g/c.in" "$g/c.out" "$g/s0.in" "$g/s0.out" "$g/s1.in" "$g/s1.out"
  TMPDIR="$tmp" setsid "$kernel" "ubd0=$g/cow,$base" root=/dev/ubda rw mem=64M umid=b "uml_dir=$g/uml" \
    con=none con0=null,fd:1 con1=fd:3,fd:4 ssl=none ssl0=fd:5,fd:6 ssl1=fd:7,fd:8 \
    "eth0=vde,$dir/sw$n,$mac" init=/umlfleet/init umlfleet.serial=2 \
    "umlfleet.hostname=g$i" "umlfleet.ip=eth0:$ip" "$@" </dev/null >"$g/console.log" 2>&1 \
    3<>"$g/c.in" 4<>"$g/c.out" 5<>"$g/s0.in" 6<>"$g/s0.out" 7<>"$g/s1.in" 8<>"$g/s1.out" &
  echo $! >>"$dir/pids"
done
deadline=$((t0 + ${BARE_TIMEOUT_S:-120} * 1000000000))
while :; do
  ready=$(grep -l UMLFLEET-READY "$dir"/g*/console.log 2>/dev/null | wc -l)
  [ "$ready" -ge "$count" ] && break
  if [ "$(date +%s%N)" -gt "$deadline" ]; then echo "TIMEOUT $(($(date +%s%N) - t0)) $ready"; exit 1; fi
  sleep 0.05
done
echo "READY $(($(date +%s%N) - t0)) $ready"
