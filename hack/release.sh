#!/usr/bin/env bash
# Builds the release archives of kubectl-clusternet, one per platform, and
# their sha256 checksums (what `make release` runs).
#
#   VERSION    release version stamped into the binary (v0.1.0)
#   LDFLAGS    -ldflags for go build (the Makefile's: version, commit, date)
#   PLATFORMS  os/arch list (the eight the seed lists)
#   OUT        output folder (_output/release)
#
# Each archive, kubectl-clusternet_<version>_<os>_<arch>.tar.gz, holds the
# binary, the completion helper kubectl_complete-clusternet, README.md and
# LICENSE. Archives are reproducible: sorted entries, fixed times and owners,
# gzip without a timestamp, so the same commit gives the same checksums.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:?VERSION is required, e.g. v0.1.0}
PLATFORMS=${PLATFORMS:-darwin/amd64 darwin/arm64 linux/amd64 linux/arm64 linux/ppc64le linux/s390x linux/386 linux/arm}
OUT=${OUT:-_output/release}
LDFLAGS=${LDFLAGS:--s -w -X github.com/clusternet/clusternet/pkg/version.gitVersion=$VERSION}
# The commit's time, so archives do not change with the clock.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

archives=()
for platform in $PLATFORMS; do
  os=${platform%/*} arch=${platform#*/}
  name="kubectl-clusternet_${VERSION}_${os}_${arch}"
  dir="$work/$name"
  mkdir -p "$dir"
  echo "release: building $platform" >&2
  GOOS=$os GOARCH=$arch CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o "$dir/kubectl-clusternet" ./cmd/kubectl-clusternet
  cp cmd/kubectl-clusternet/kubectl_complete-clusternet README.md "$dir/"
  if [ -f LICENSE ]; then
    cp LICENSE "$dir/"
  else
    echo "release: warning: no LICENSE file in the repository; krew-index wants one in each archive" >&2
  fi
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -C "$dir" -cf - . | gzip -n -9 >"$OUT/$name.tar.gz"
  archives+=("$name.tar.gz")
done
(cd "$OUT" && sha256sum "${archives[@]}" >checksums.txt)
cat "$OUT/checksums.txt"
