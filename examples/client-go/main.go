// Command client-go shows Clusternet's shadow API from a Go program: with a
// rest.Config wrapped by pkg/client/shadow, client-go's typed and dynamic
// clients store templates in the parent cluster instead of running objects.
//
//	go run ./examples/client-go --kubeconfig ~/.kube/parent
//
// It stores a Namespace and a Deployment template, lists the Deployment
// templates, scales the template, and deletes both again.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/clusternet/clusternet/pkg/client/shadow"
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the parent cluster")
	namespace := flag.String("namespace", "client-go-demo", "namespace of the templates")
	flag.Parse()
	if err := run(*kubeconfig, *namespace); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, namespace string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	// The only Clusternet-specific line: requests for ordinary kinds go to
	// the shadow API, /apis/shadow/v1alpha1/...
	cs, err := kubernetes.NewForConfig(shadow.Wrap(cfg))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("storing the Namespace template: %w", err)
	}
	fmt.Printf("namespace/%s template stored\n", namespace)

	labels := map[string]string{"app": "hello"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: namespace, Labels: map[string]string{"clusternet-app": "hello"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "hello", Image: "nginx:1.14.2"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(namespace).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("storing the Deployment template: %w", err)
	}
	fmt.Printf("deployment.apps/hello template stored in %s\n", namespace)

	list, err := cs.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, d := range list.Items {
		fmt.Printf("template %s/%s: %d replicas, created %s\n", d.Namespace, d.Name, ptr.Deref(d.Spec.Replicas, 1), d.CreationTimestamp.UTC().Format(time.RFC3339))
	}

	scale, err := cs.AppsV1().Deployments(namespace).GetScale(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		return err
	}
	scale.Spec.Replicas = 3
	if scale, err = cs.AppsV1().Deployments(namespace).UpdateScale(ctx, "hello", scale, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("scaling the template: %w", err)
	}
	fmt.Printf("deployment.apps/hello template scaled to %d\n", scale.Spec.Replicas)

	if err := cs.AppsV1().Deployments(namespace).Delete(ctx, "hello", metav1.DeleteOptions{}); err != nil {
		return err
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{}); err != nil {
		return err
	}
	fmt.Println("templates deleted")
	return nil
}
