package main

// otherTools are the long flags of tools other than ours that the docs use,
// by tool (the command word, or `go run <package>` for a program outside
// this repository). Their commands cannot be built here, so each flag was
// checked by hand against the tool's own --help at the version the docs
// name; add one only after checking it. A flag written without its command
// (`--set` in a sentence) passes if any tool here, or any of ours, has it.
var otherTools = map[string][]string{
	// helm v3 install/upgrade (docs/install.md, docs/helm.md).
	"helm": {"namespace", "reuse-values", "set", "set-file", "values", "version", "wait", "create-namespace"},
	// krew v0.4.4, as `kubectl krew install` (docs/cli.md).
	"krew": {"manifest", "archive"},
	// kube-apiserver: what the parent must run with (docs/install.md,
	// docs/registration.md), and its request limits (docs/scale.md). The
	// --requestheader-* flags are the hub's too.
	"kube-apiserver": {
		"max-requests-inflight", "max-mutating-requests-inflight",
		"enable-aggregator-routing", "enable-bootstrap-token-auth",
		"proxy-client-cert-file", "proxy-client-key-file",
		"requestheader-client-ca-file", "requestheader-allowed-names",
		"requestheader-username-headers", "requestheader-group-headers", "requestheader-extra-headers-prefix",
	},
	// kube-controller-manager: where the parent's CA bundle that agents
	// trust comes from (docs/install.md).
	"kube-controller-manager": {"root-ca-file"},
	// etcd and kwok run only inside the testbed; no doc passes them flags yet.
	"etcd": {},
	"kwok": {},
	// go's own flags are single-dash (-race, -count): none is written with two.
	"go": {},
}
