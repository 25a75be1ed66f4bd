package v1alpha1_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
)

// A client-go clientset for one child cluster, through the parent: only the
// Host of the parent's rest.Config changes, so the parent authenticates the
// caller as usual and the hub sends the request through that child's
// tunnel. A test server stands in for the parent and shows the path it gets.
func Example() {
	parent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.Method, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"NamespaceList","apiVersion":"v1","items":[{"metadata":{"name":"foo"}}]}`))
	}))
	defer parent.Close()
	cfg := &rest.Config{Host: parent.URL} // in a program: clientcmd.BuildConfigFromFlags("", kubeconfig)

	clusterID := "e2e363e5-4ce8-49ed-83d1-37b628578bc8" // the ManagedCluster's spec.clusterId
	child := rest.CopyConfig(cfg)
	child.Host = cfg.Host + "/apis/" + proxiesv1alpha1.SchemeGroupVersion.String() + "/sockets/" + clusterID + "/proxy/direct"

	cs, err := kubernetes.NewForConfig(child)
	if err != nil {
		panic(err)
	}
	namespaces, err := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("the child's namespaces:", namespaces.Items[0].Name)
	// Output:
	// GET /apis/proxies.clusternet.io/v1alpha1/sockets/e2e363e5-4ce8-49ed-83d1-37b628578bc8/proxy/direct/api/v1/namespaces
	// the child's namespaces: foo
}
