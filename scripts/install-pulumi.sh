#!/usr/bin/env bash
# Builds the Pulumi CLI from its Go module (no npm or Debian package carries
# it, and get.pulumi.com is unreachable here). Idempotent: skips the build when
# the pinned version is already in place. The Go language host
# (pulumi-language-nodejs) is not built: the module proxy refuses its module
# (403 at every version); bin/pulumi-language-nodejs in this repo stands in.
# Usage: scripts/install-pulumi.sh [bin-dir]   (default: $UMLFLEET_CACHE/pulumi-<ver>/bin)
set -euo pipefail
PULUMI_VERSION=v3.248.0
cache=${UMLFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/umlfleet}
bin=${1:-$cache/pulumi-$PULUMI_VERSION/bin}
if [[ -x $bin/pulumi ]] \
   && "$bin/pulumi" version 2>/dev/null | grep -qx "$PULUMI_VERSION"; then
  echo "pulumi $PULUMI_VERSION already in $bin"; exit 0
fi
mkdir -p "$bin"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
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
go build -trimpath -ldflags "$ldflags" -o "$bin/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
mv "$bin/pulumi.tmp" "$bin/pulumi"
"$bin/pulumi" version
