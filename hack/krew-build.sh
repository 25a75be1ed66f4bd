#!/usr/bin/env bash
# Builds krew and its manifest validator (validate-krew-manifest) from the Go
# module proxy and caches them outside git, like hack/testbed-build.sh does for
# the testbed. Prints the folder holding both binaries.
#
#   KREW_VERSION (v0.4.4: the only version the module proxy serves)
#   CLUSTERNET_TESTBED_CACHE (${XDG_CACHE_HOME:-$HOME/.cache}/clusternet-testbed)
set -euo pipefail

KREW_VERSION=${KREW_VERSION:-v0.4.4}
CACHE=${CLUSTERNET_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clusternet-testbed}
out="$CACHE/krew-$KREW_VERSION"

# Built outside the project's module: no go.work, no -mod=vendor.
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0

mkdir -p "$CACHE"
exec 9>"$CACHE/.krew.lock"
flock 9
if [ ! -x "$out/krew" ] || [ ! -x "$out/validate-krew-manifest" ]; then
  echo "krew-build: building krew $KREW_VERSION" >&2
  # `go install pkg@version` asks the proxy for the version list, which it
  # refuses for krew; krew's own module (its go.mod and go.sum pin every
  # dependency) builds as it was released.
  src="$CACHE/src/krew-$KREW_VERSION"
  dir=$(cd "$CACHE" && go mod download -json "sigs.k8s.io/krew@$KREW_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf "$src" && mkdir -p "$(dirname "$src")" && cp -r "$dir" "$src" && chmod -R u+w "$src"
  mkdir -p "$out"
  for b in krew validate-krew-manifest; do
    (cd "$src" && go build -mod=mod -trimpath -ldflags "-s -w \
      -X sigs.k8s.io/krew/internal/version.gitTag=$KREW_VERSION" -o "$out/$b.tmp" "./cmd/$b")
    mv "$out/$b.tmp" "$out/$b"
  done
fi
echo "$out"
