#!/usr/bin/env bash
# The README's main job: a parent and two children on real control planes,
# clusternet-hub in the parent and clusternet-agent in each child, run as local
# processes with the args the deploy manifests give them, registered the seed
# README's way (bootstrap token, registration Secret from the template).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${TESTBED_DIR:-$PWD/_output/testbed}
KUBECTL=$(bash hack/testbed-build.sh | grep '/kubernetes-')/kubectl
TOKEN=07401b.f395accd246ae52d

if [ -f "$DIR/testbed.json" ]; then
  echo "local-up: a testbed is already running in $DIR; run 'make local-down' first" >&2
  exit 1
fi
bin/testbed up --dir "$DIR" --children 2
trap 'echo "local-up failed; logs are in $DIR; stop with: make local-down" >&2' ERR

# args: the container args of a deploy manifest, one per line.
args() { sed -n 's/^ *- \(--[^ ]*\)$/\1/p' "$1"; }

PARENT=$DIR/parent/admin.kubeconfig
PARENT_URL=$(KUBECONFIG=$PARENT "$KUBECTL" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
pk() { KUBECONFIG=$PARENT "$KUBECTL" "$@"; }
pk apply --server-side -f deploy/crds >/dev/null
pk wait --for=condition=Established --timeout=60s crd --all >/dev/null
pk apply -f deploy/hub/00-namespace.yaml -f deploy/hub/rbac.yaml -f manifests/samples/cluster_bootstrap_token.yaml >/dev/null
mapfile -t hub_args < <(args deploy/hub/deployment.yaml)
bin/testbed run --dir "$DIR" --name clusternet-hub -- "$PWD/bin/hub" --kubeconfig "$PARENT" "${hub_args[@]}"

mapfile -t agent_args < <(args deploy/agent/deployment.yaml)
for child in child1 child2; do
  ck() { KUBECONFIG=$DIR/$child/admin.kubeconfig "$KUBECTL" "$@"; }
  ck apply -f deploy/agent/00-namespace.yaml >/dev/null
  # What `PARENTURL=... REGTOKEN=... envsubst < template` does, without needing gettext.
  sed -e "s|\${PARENTURL}|$PARENT_URL|" -e "s|\${REGTOKEN}|$TOKEN|" deploy/templates/clusternet_agent_secret.yaml | ck apply -f - >/dev/null
  # The testbed's parent has a private CA, which an agent in a pod would get from parentCA in that Secret.
  bin/testbed run --dir "$DIR" --name "clusternet-agent-$child" -- "$PWD/bin/agent" \
    --kubeconfig "$DIR/$child/admin.kubeconfig" --parent-ca-file "$DIR/parent/pki/ca.crt" "${agent_args[@]}"
done

echo "local-up: waiting for both children to register..."
for _ in $(seq 1 120); do
  ready=$(pk get mcls -A -o jsonpath='{range .items[*]}{.status.readyz}{"\n"}{end}' 2>/dev/null | grep -c true || true)
  [ "$ready" = 2 ] && break
  sleep 0.5
done
if [ "$ready" != 2 ]; then
  echo "local-up: children did not register within 60s; see $DIR/clusternet-*.log" >&2
  exit 1
fi
pk get clsrr
echo
pk get mcls -A -o wide
cat <<MSG

Clusternet is up: a parent with clusternet-hub, two children with clusternet-agent.
  export KUBECONFIG=$PARENT
  alias kubectl=$KUBECTL
  kubectl get clsrr                  # registrations
  kubectl get mcls -A -o wide        # child clusters and their health
  kubectl api-resources --categories=clusternet
Children: $DIR/child1/admin.kubeconfig $DIR/child2/admin.kubeconfig
Logs: $DIR/clusternet-hub.log $DIR/clusternet-agent-child*.log
Stop everything with: make local-down
MSG
