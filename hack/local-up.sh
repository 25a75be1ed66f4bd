#!/usr/bin/env bash
# The README's main job: a parent and two children on real control planes,
# with Clusternet's CRDs installed in the parent. Later issues add the hub, an
# agent per child and a distributed sample app to this same command.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${TESTBED_DIR:-$PWD/_output/testbed}
KUBECTL=$(bash hack/testbed-build.sh | grep '/kubernetes-')/kubectl

if [ -f "$DIR/testbed.json" ]; then
  echo "local-up: a testbed is already running in $DIR; run 'make local-down' first" >&2
  exit 1
fi
bin/testbed up --dir "$DIR" --children 2

export KUBECONFIG=$DIR/parent/admin.kubeconfig
"$KUBECTL" apply --server-side -f deploy/crds >/dev/null
"$KUBECTL" wait --for=condition=Established --timeout=60s crd --all >/dev/null
echo
echo "Clusternet's APIs are installed in the parent. Try:"
echo "  export KUBECONFIG=$KUBECONFIG"
echo "  alias kubectl=$KUBECTL"
echo "  kubectl api-resources --categories=clusternet"
echo "  kubectl apply -f examples/applications/subscription.yaml && kubectl get subs -A"
echo "Children: $DIR/child1/admin.kubeconfig $DIR/child2/admin.kubeconfig"
echo "Stop everything with: make local-down"
