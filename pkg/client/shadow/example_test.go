package shadow_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/clusternet/clusternet/pkg/client/shadow"
)

// Storing a Deployment template with client-go: the same typed client and
// the same call as for a real Deployment, on a wrapped rest.Config. A test
// server stands in for the parent and shows the path the request takes.
func ExampleWrap() {
	parent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.Method, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"foo"}}`))
	}))
	defer parent.Close()
	cfg := &rest.Config{Host: parent.URL} // in a program: clientcmd.BuildConfigFromFlags("", kubeconfig)

	cs, err := kubernetes.NewForConfig(shadow.Wrap(cfg))
	if err != nil {
		panic(err)
	}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "foo"}}
	created, err := cs.AppsV1().Deployments("foo").Create(context.Background(), deploy, metav1.CreateOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("template stored:", created.Namespace+"/"+created.Name)
	// Output:
	// POST /apis/shadow/v1alpha1/namespaces/foo/deployments
	// template stored: foo/web
}

// Which paths go to the shadow API, which stay on the parent, and which are
// refused because templates do not have them.
func ExampleRewrite() {
	for _, path := range []string{
		"/apis/apps/v1/namespaces/foo/deployments/web",
		"/apis/apps/v1/namespaces/foo/deployments/web/scale",
		"/api/v1/namespaces/foo/events",
		"/apis/apps.clusternet.io/v1alpha1/namespaces/default/subscriptions",
		"/apis/apps/v1/namespaces/foo/deployments/web/status",
	} {
		rewritten, err := shadow.Rewrite(path)
		if err != nil {
			fmt.Println("refused:", err)
			continue
		}
		fmt.Println(rewritten)
	}
	// Output:
	// /apis/shadow/v1alpha1/namespaces/foo/deployments/web
	// /apis/shadow/v1alpha1/namespaces/foo/deployments/web/scale
	// /api/v1/namespaces/foo/events
	// /apis/apps.clusternet.io/v1alpha1/namespaces/default/subscriptions
	// refused: subresource "status" of deployments is not served for templates: the shadow API serves only "scale"; to reach the live object use `kubectl clusternet --cluster <name> ...`
}
