#!/usr/bin/env bash
# `pulumi` for this project folder with a local file backend, no Pulumi
# service and no plugin downloads: scripts/pulumi.sh up | preview | destroy ...
# State lives in .pulumi-state/ (ignored by git).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${UMLFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/umlfleet}
export PATH="$cache/pulumi-v3.248.0/bin:$root/bin:$root/node_modules/@pulumi/pulumi:$PATH"
# metadata=skip: no .attrs side files (written in place; see docs/operations.md, "After a killed pulumi CLI").
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$root/.pulumi-state?metadata=skip}
export PULUMI_HOME=${PULUMI_HOME:-$root/.pulumi-state/home}
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE-umlfleet-local}
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
mkdir -p "$root/.pulumi-state/home"
cd "$root"
pulumi stack select --create dev >/dev/null 2>&1 || true
exec pulumi "$@"
