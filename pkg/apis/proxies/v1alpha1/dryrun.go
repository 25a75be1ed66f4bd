package v1alpha1

// DryRunParameter is the query parameter of sockets/<cluster-id>/proxy/<path>
// that the hub forwards to the child as dryRun (its values unchanged, e.g.
// clusternet-dry-run=All becomes dryRun=All).
//
// It exists because the parent's API server refuses any request to a connect
// subresource that carries dryRun ("dryRun is not supported") before the
// hub sees it, so `kubectl apply --dry-run=server` and `kubectl clusternet
// diff` could not reach a child. Clients rename dryRun to this parameter for
// requests through the proxy (pkg/cli does it for every child config).
//
// Safe to forward: a dry run only lessens what a request does, and the
// parent's authorization of sockets/proxy and the child's RBAC (for the user
// the hub forwards) are checked as for the real request.
const DryRunParameter = "clusternet-dry-run"

// DryRunHeader is set by the hub on the response to a request whose
// DryRunParameter it forwarded as dryRun. A client checks for it: a hub that
// predates DryRunParameter forwards it untouched, and the child, which
// ignores unknown parameters, then does the request for real.
const DryRunHeader = "Clusternet-Dry-Run"
