package helm

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/rest"
	kubetesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// A CRD installed in the child after Helm first discovered it is found by
// the next release acting there once the discovery is DiscoveryMaxAge old,
// and not rediscovered more often than that.
func TestGetterRediscoversAfterMaxAge(t *testing.T) {
	fake := &fakediscovery.FakeDiscovery{Fake: &kubetesting.Fake{Resources: []*metav1.APIResourceList{{
		GroupVersion: "v1",
		APIResources: []metav1.APIResource{{Name: "configmaps", Kind: "ConfigMap", Namespaced: true, Verbs: metav1.Verbs{"get"}}},
	}}}}
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	c := NewCluster(&rest.Config{Host: "https://child.invalid"})
	c.refreshes.Clock, c.resetEvery = clk, 10*time.Second
	c.newDiscovery = func(*rest.Config) (discovery.DiscoveryInterface, error) { return fake, nil }
	widget := schema.GroupKind{Group: "example.com", Kind: "Widget"}

	steps := []struct {
		name    string
		advance time.Duration
		// learn installs the Widget CRD before this step's lookup.
		learn bool
	}{
		{name: "first release: no Widget yet"},
		{name: "CRD installed, within the max age: the cached discovery", advance: 3 * time.Second, learn: true},
		{name: "past the max age: rediscovered", advance: 8 * time.Second},
		{name: "right after: cached", advance: time.Second},
	}
	var got []string
	for _, s := range steps {
		clk.SetTime(clk.Now().Add(s.advance))
		if s.learn {
			fake.Resources = append(fake.Resources, &metav1.APIResourceList{
				GroupVersion: "example.com/v1",
				APIResources: []metav1.APIResource{{Name: "widgets", Kind: "Widget", Namespaced: true, Verbs: metav1.Verbs{"get"}}},
			})
		}
		g, err := c.Getter("apps")
		if err != nil {
			t.Fatalf("%s: Getter: %v", s.name, err)
		}
		mapper, err := g.ToRESTMapper()
		if err != nil {
			t.Fatalf("%s: ToRESTMapper: %v", s.name, err)
		}
		switch m, err := mapper.RESTMapping(widget, "v1"); {
		case err == nil:
			got = append(got, "found "+m.Resource.Resource)
		case meta.IsNoMatchError(err):
			got = append(got, "no match")
		default:
			t.Fatalf("%s: RESTMapping: %v", s.name, err)
		}
	}
	want := []string{"no match", "no match", "found widgets", "found widgets"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Widget mapping at each step (-want +got):\n%s", diff)
	}
	// One discovery of the groups at first, one after the max age.
	groups := 0
	for _, a := range fake.Actions() {
		if a.GetResource().Resource == "group" {
			groups++
		}
	}
	if groups != 2 {
		t.Errorf("discovered the groups %d times, want 2", groups)
	}
}
