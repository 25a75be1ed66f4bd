package clusterapi

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/clusternet/clusternet/pkg/deployer"
)

// Child is a discovered cluster as the hub reaches it through its
// kubeconfig Secret.
type Child interface {
	// ClusterID is the id its agent registers with: the UID of its
	// kube-system namespace.
	ClusterID(ctx context.Context) (string, error)
	// Apply installs objs: all dry-run first, then applied (server-side
	// apply) in their order, namespaces first, so that a refused object
	// changes nothing.
	Apply(ctx context.Context, objs []*unstructured.Unstructured) error
}

// NewChildFunc connects to a discovered cluster.
type NewChildFunc func(cfg *rest.Config) (Child, error)

// NewChild reaches a cluster with cfg; the generic deployer applies (its
// dry-run-then-apply, namespaces first, field manager "clusternet").
func NewChild(cfg *rest.Config) (Child, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	apply, err := deployer.NewChild(cfg)
	if err != nil {
		return nil, err
	}
	return &child{kube: kube, apply: apply}, nil
}

type child struct {
	kube  kubernetes.Interface
	apply *deployer.Child
}

func (c *child) ClusterID(ctx context.Context) (string, error) {
	ns, err := c.kube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading its kube-system namespace (the cluster id): %w", err)
	}
	return string(ns.UID), nil
}

func (c *child) Apply(ctx context.Context, objs []*unstructured.Unstructured) error {
	plan := deployer.Plan{Objects: make([]deployer.Object, len(objs))}
	for i, o := range objs {
		plan.Objects[i] = deployer.Object{Index: i, Obj: o}
	}
	plan.Objects = deployer.ApplyOrder(plan.Objects)
	return c.apply.Deploy(ctx, plan).Err
}
