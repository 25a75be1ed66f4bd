package framework

import (
	"context"
	"path/filepath"

	"github.com/clusternet/clusternet/test/testbed"
)

// PassThroughManifest is the optional manifest that lets anonymous clients
// of the parent use upstream Clusternet's credential pass-through (its header says what
// that opens); InstallParent does not apply it.
func PassThroughManifest() string {
	return filepath.Join(Root(), "deploy", "optional", "anonymous-passthrough.yaml")
}

// InstallPassThrough applies PassThroughManifest to parent, as an admin who
// opts in to upstream Clusternet's anonymous pass-through would.
func InstallPassThrough(ctx context.Context, parent *testbed.Cluster) error {
	return kubectl(ctx, parent, "", "apply", "-f", PassThroughManifest())
}
