package mcs

import (
	"context"
	"errors"
	"fmt"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	discoveryclient "k8s.io/client-go/kubernetes/typed/discovery/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
)

// SyncSlices makes the slices a writer owns match want: it creates what is
// missing, updates what differs (SameContent) and deletes what have holds
// beyond want. have are the writer's own slices as its cache shows them
// (selected by its labels), want what it renders; both may span namespaces.
// Two slices of want with one name (a hash collision) are an error naming
// both, and neither is written.
func SyncSlices(ctx context.Context, client discoveryclient.EndpointSlicesGetter, have, want []*discoveryv1.EndpointSlice) error {
	type key struct{ ns, name string }
	existing := make(map[key]*discoveryv1.EndpointSlice, len(have))
	for _, s := range have {
		existing[key{s.Namespace, s.Name}] = s
	}
	var errs []error
	wanted := make(map[key]*discoveryv1.EndpointSlice, len(want))
	for _, w := range want {
		k := key{w.Namespace, w.Name}
		if first, dup := wanted[k]; dup {
			errs = append(errs, fmt.Errorf("slices of %s and of %s both render to %s/%s: rename one of the Services or its slices",
				describe(first), describe(w), k.ns, k.name))
			continue
		}
		wanted[k] = w
	}
	for _, w := range want {
		k := key{w.Namespace, w.Name}
		if wanted[k] != w {
			delete(existing, k) // a collision: leave what is there
			continue
		}
		h, ok := existing[k]
		delete(existing, k)
		switch {
		case !ok:
			_, err := client.EndpointSlices(w.Namespace).Create(ctx, w, metav1.CreateOptions{})
			errs = append(errs, err)
		case !SameContent(h, w):
			u := h.DeepCopy()
			u.Labels, u.Annotations = merged(u.Labels, w.Labels), merged(u.Annotations, w.Annotations)
			u.OwnerReferences = w.OwnerReferences
			u.AddressType, u.Endpoints, u.Ports = w.AddressType, w.Endpoints, w.Ports
			if u.AddressType != h.AddressType {
				// addressType is immutable: replace the slice.
				errs = append(errs, deleteSlice(ctx, client, h))
				_, err := client.EndpointSlices(w.Namespace).Create(ctx, w, metav1.CreateOptions{})
				errs = append(errs, err)
				continue
			}
			_, err := client.EndpointSlices(u.Namespace).Update(ctx, u, metav1.UpdateOptions{})
			errs = append(errs, err)
		}
	}
	for _, h := range existing {
		errs = append(errs, deleteSlice(ctx, client, h))
	}
	return errors.Join(errs...)
}

// RemoveSlices deletes the slices of namespace ("" for all) that selector
// selects: what a writer leaves behind when its gate is turned off.
func RemoveSlices(ctx context.Context, client discoveryclient.EndpointSlicesGetter, namespace, selector string) error {
	list, err := client.EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err
	}
	have := make([]*discoveryv1.EndpointSlice, len(list.Items))
	for i := range list.Items {
		have[i] = &list.Items[i]
	}
	return SyncSlices(ctx, client, have, nil)
}

// describe names the Service and source cluster a rendered slice is for.
func describe(s *discoveryv1.EndpointSlice) string {
	d := s.Labels[LabelServiceNamespace] + "/" + s.Labels[mcsv1alpha1.LabelServiceName]
	if c := s.Labels[mcsv1alpha1.LabelSourceCluster]; c != "" {
		d += " from cluster " + c
	}
	return d
}

func deleteSlice(ctx context.Context, client discoveryclient.EndpointSlicesGetter, s *discoveryv1.EndpointSlice) error {
	var opts metav1.DeleteOptions
	if s.UID != "" {
		// Only the slice the cache showed: not one created since under its name.
		opts.Preconditions = &metav1.Preconditions{UID: &s.UID}
	}
	err := client.EndpointSlices(s.Namespace).Delete(ctx, s.Name, opts)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func merged(have, want map[string]string) map[string]string {
	if have == nil && len(want) > 0 {
		have = make(map[string]string, len(want))
	}
	for k, v := range want {
		have[k] = v
	}
	return have
}
