#!/usr/bin/env bash
# Builds the real control-plane binaries the testbed runs (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok) from the Go module proxy
# and caches them outside git, one folder per version, so a warm machine rebuilds
# nothing. Prints the folder holding the binaries.
#
# Versions come from the environment so another Kubernetes release can be tried:
#   KUBE_VERSION (v1.35.4)  ETCD_VERSION (v3.5.21)  KWOK_VERSION (v0.8.0)
#   CHILD_SKEW_VERSION (v1.33.13): the Kubernetes version one child of the
#     e2e testbed runs (a real fleet mixes versions); only its control-plane
#     binaries are built, kubectl stays KUBE_VERSION's. Set it to KUBE_VERSION
#     for a fleet on one version.
#   CLUSTERNET_TESTBED_CACHE (${XDG_CACHE_HOME:-$HOME/.cache}/clusternet-testbed)
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.35.4}
CHILD_SKEW_VERSION=${CHILD_SKEW_VERSION:-v1.33.13}
ETCD_VERSION=${ETCD_VERSION:-v3.5.21}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
CACHE=${CLUSTERNET_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clusternet-testbed}

log() { echo "testbed-build: $*" >&2; }

# The build modules must not inherit the project's go.work or GOFLAGS=-mod=vendor.
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0

# build_kube VERSION BINARY... builds those commands of k8s.io/kubernetes
# into $CACHE/kubernetes-VERSION, skipping what is already there.
build_kube() {
  local version=$1; shift
  local bins=("$@")
  local out="$CACHE/kubernetes-$version"
  if all_present "$out" "${bins[@]}"; then return; fi
  local src="$CACHE/src/kubernetes-$version"
  mkdir -p "$src" "$out"
  # k8s.io/kubernetes replaces its staging modules with ./staging paths that the
  # module zip does not contain; each one is published as k8s.io/<name> v0.<minor>.<patch>.
  local staging="v0${version#v1}"
  log "resolving k8s.io/kubernetes $version (staging modules at $staging)"
  local gomod
  gomod=$(cd "$src" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module clusternet.io/testbed/kubernetes"
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/[a-z0-9-]*$#replace \1 => \1 '"$staging"'#p' "$gomod"
  } >"$src/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for b in "${bins[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
    printf ')\n'
  } >"$src/tools.go"
  # tidy pins every dependency in go.sum once; the builds below are then
  # -mod=readonly, so nothing is resolved anew on a later day.
  (cd "$src" && go mod tidy)
  for b in "${bins[@]}"; do
    [ -x "$out/$b" ] && continue
    log "building $b $version"
    (cd "$src" && go build -mod=readonly -tags tools -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$version \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2) \
      -X k8s.io/client-go/pkg/version.gitVersion=$version" \
      -o "$out/$b.tmp" "k8s.io/kubernetes/cmd/$b")
    mv "$out/$b.tmp" "$out/$b"
  done
}

build_etcd() {
  local out="$CACHE/etcd-$ETCD_VERSION"
  if all_present "$out" etcd; then return; fi
  local src="$CACHE/src/etcd-$ETCD_VERSION"
  mkdir -p "$src" "$out"
  cat >"$src/main.go" <<'GO'
// Command etcd is etcd's own server main, built from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  printf 'module clusternet.io/testbed/etcd\n\ngo 1.23\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$src/go.mod"
  log "building etcd $ETCD_VERSION"
  (cd "$src" && go mod tidy >/dev/null && go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" .)
  mv "$out/etcd.tmp" "$out/etcd"
}

build_kwok() {
  local out="$CACHE/kwok-$KWOK_VERSION"
  if all_present "$out" kwok && [ -d "$out/stage" ]; then return; fi
  mkdir -p "$out"
  log "building kwok $KWOK_VERSION"
  GOBIN="$out" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # kwok ships its lifecycle stages (what makes fake pods Running) as YAML in its module.
  local dir
  dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf "$out/stage" && cp -r "$dir/kustomize/stage" "$out/stage" && chmod -R u+w "$out/stage"
}

all_present() {
  local dir=$1; shift
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

mkdir -p "$CACHE"
# Test packages run in parallel and each may find the cache cold: one builds,
# the others wait for it and then find everything present.
exec 9>"$CACHE/.lock"
flock 9
build_etcd
build_kwok
build_kube "$KUBE_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl
# The skew child talks to the parent's kubectl and kwok like the others: only
# its control plane comes from the other version.
build_kube "$CHILD_SKEW_VERSION" kube-apiserver kube-controller-manager kube-scheduler
for d in "$CACHE/etcd-$ETCD_VERSION" "$CACHE/kubernetes-$KUBE_VERSION" "$CACHE/kubernetes-$CHILD_SKEW_VERSION" "$CACHE/kwok-$KWOK_VERSION"; do echo "$d"; done
