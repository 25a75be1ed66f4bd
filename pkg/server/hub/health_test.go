package hub

import (
	"context"
	"strings"
	"testing"

	kubeinformers "k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"

	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
)

func TestInformersSynced(t *testing.T) {
	c := &Context{
		Informers:     externalversions.NewSharedInformerFactory(clusternetfake.NewClientset(), 0),
		KubeInformers: kubeinformers.NewSharedInformerFactory(kubefake.NewClientset(), 0),
	}
	mcls := c.Informers.Clusters().V1beta1().ManagedClusters().Informer()
	c.Informers.Apps().V1alpha1().Descriptions().Informer()
	check := informersSynced(c, mcls.HasSynced)
	if check.Name() != "clusternet-informer-sync" {
		t.Errorf("name %q", check.Name())
	}
	// Before the informers start (the API server serves first): not ready.
	if err := check.Check(nil); err == nil || !strings.Contains(err.Error(), "has not listed ManagedClusters") {
		t.Errorf("before start: %v, want not ready", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); c.Informers.Shutdown() }()
	c.Informers.Start(ctx.Done())
	c.Informers.WaitForCacheSync(ctx.Done())
	if err := check.Check(nil); err != nil {
		t.Errorf("synced: %v", err)
	}
}
