#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian machine: the host tools the runtime
# drives (from Debian), the npm dependencies, the Pulumi CLI (built from its Go
# module), umlfleet's kernel (built from Debian's source), and a compiled dist/. Safe to run again: each step skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# mmdebstrap and uidmap build Debian bases; openssh and openssl serve the login and target-host
# tests (sshd in network namespaces), util-linux's setpriv drops a guest to its runAs uid,
# graphviz's dot renders `umlfleet graph --format svg`.
debs=(user-mode-linux uml-utilities vde2 e2fsprogs busybox-static bubblewrap coreutils iproute2 procps
  util-linux mmdebstrap uidmap openssh-client openssh-server openssl graphviz)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ ! -d node_modules/@pulumi/pulumi ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

scripts/install-pulumi.sh
# umlfleet's kernel (the demo boots it): built once from Debian's source, cached.
scripts/build-kernel.sh >/dev/null
npm run --silent build
# The serialized provider loads the implementation by package name
# (require("umlfleet/...")) from the project folder's node_modules.
ln -sfn .. node_modules/umlfleet
echo "umlfleet: set-up done"
