#!/usr/bin/env bash
# The Pulumi toolchain for umlfleet projects, usable from any project folder:
#
#   scripts/install-pulumi.sh [bin-dir]
#
# 1. Builds the Pulumi CLI from its Go module into the cache (no npm or Debian
#    package carries it, and get.pulumi.com is unreachable here), once:
#    $UMLFLEET_CACHE/pulumi-<ver>/bin/pulumi (UMLFLEET_CACHE defaults to
#    ~/.cache/umlfleet). Needs Go 1.24 or later on PATH.
# 2. Puts `pulumi` in bin-dir (default: that cache folder), hard-linked from
#    the cache (copied across file systems). An existing `pulumi` of another
#    version there is kept: it is the user's own installation.
# 3. Puts beside it the two plugins the CLI looks for next to itself (and on
#    PATH), which Pulumi's own distribution ships there:
#    - pulumi-language-nodejs: the Go language host cannot be built here (the
#      module proxy refuses its module, 403 at every version), so umlfleet's
#      Node.js stand-in (bin/pulumi-language-nodejs) goes in its place;
#    - pulumi-resource-pulumi-nodejs: the dynamic-provider plugin, a script
#      that runs the project's own @pulumi/pulumi (bin/pulumi-resource-pulumi-nodejs).
#    A real plugin already there (one that is not umlfleet's stand-in) is
#    left alone, so a standard Pulumi installation keeps working as it was.
# Idempotent: a second run changes nothing.
set -euo pipefail
PULUMI_VERSION=v3.248.0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${UMLFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/umlfleet}
built=$cache/pulumi-$PULUMI_VERSION/bin
bin=${1:-$built}
# The marker that tells umlfleet's stand-ins from real plugins.
marker="umlfleet stand-in"

log() { printf 'install-pulumi: %s\n' "$*"; }
version_of() { "$1" version 2>/dev/null || true; }

build_cli() {
  mkdir -p "$built"
  local work
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  (
    cd "$work"
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local
    # pkg/v3's go.mod carries replace directives, so `go install pkg@ver` refuses it:
    # build from a wrapper module that repeats pkg's one non-local replace.
    cat > go.mod <<MOD
module umlfleet.local/pulumi-build
go 1.24
require (
	github.com/pulumi/pulumi/pkg/v3 $PULUMI_VERSION
	github.com/pulumi/pulumi/sdk/v3 $PULUMI_VERSION
)
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
    cat > tools.go <<'GO'
//go:build tools
package tools
import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GO
    go mod tidy >/dev/null 2>&1 || true
    go get github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_VERSION
    ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
    go build -trimpath -ldflags "$ldflags" -o "$built/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  )
  mv "$built/pulumi.tmp" "$built/pulumi"
}

if [[ $(version_of "$built/pulumi") == "$PULUMI_VERSION" ]]; then
  log "pulumi $PULUMI_VERSION already built in $built"
else
  command -v go >/dev/null || { log "error: building the Pulumi CLI needs Go 1.24 or later on PATH"; exit 1; }
  log "building pulumi $PULUMI_VERSION into $built (about 10 minutes the first time)"
  build_cli
fi

mkdir -p "$bin"
bin=$(cd "$bin" && pwd)
if [[ $bin != "$built" ]]; then
  if [[ ! -e $bin/pulumi ]]; then
    ln -f "$built/pulumi" "$bin/pulumi.tmp" 2>/dev/null || cp "$built/pulumi" "$bin/pulumi.tmp"
    mv -f "$bin/pulumi.tmp" "$bin/pulumi"
    log "pulumi $PULUMI_VERSION -> $bin/pulumi"
  elif have=$(version_of "$bin/pulumi") && [[ $have != "$PULUMI_VERSION" ]]; then
    log "keeping the pulumi ${have:-of unknown version} in $bin (not replaced by $PULUMI_VERSION)"
  fi
fi

# Our stand-in is replaced by the current one; anything else is a real plugin.
for plugin in pulumi-language-nodejs pulumi-resource-pulumi-nodejs; do
  target=$bin/$plugin
  if [[ -e $target ]] && ! grep -q "$marker" "$target" 2>/dev/null; then
    log "keeping the real $plugin in $bin"
  elif ! cmp -s "$here/bin/$plugin" "$target"; then
    install -m 0755 "$here/bin/$plugin" "$target.tmp"
    mv -f "$target.tmp" "$target"
    log "$plugin (umlfleet's stand-in) -> $target"
  fi
done
"$bin/pulumi" version
