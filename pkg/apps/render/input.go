package render

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
)

// Reader reads the objects a Base's feeds name: the hub reads its caches
// (a feeds.Source is one); the plugin reads the parent, with the objects of
// a file laid over them, to show what a change would render.
type Reader interface {
	// Manifest is the Manifest named name in the reserved namespace.
	Manifest(name string) (*appsv1alpha1.Manifest, error)
	HelmChart(namespace, name string) (*appsv1alpha1.HelmChart, error)
}

// InputOf is what base renders from: its feeds read through r, its share of
// divided replicas (AnnotationReplicas), and overrides (Overrides orders
// them). subscriptionUID and the Base's AnnotationSubscriptionGeneration
// salt the inputs hash. A feed that cannot be read is a *Error naming it.
func InputOf(base *appsv1alpha1.Base, subscriptionUID types.UID, r Reader, overrides []Override) (Input, error) {
	in := Input{Salt: string(subscriptionUID) + "/" + base.Annotations[AnnotationSubscriptionGeneration]}
	for _, f := range base.Spec.Feeds {
		o, err := objectOf(f, r)
		if err != nil {
			return in, err
		}
		in.Objects = append(in.Objects, o)
	}
	rs, err := DecodeReplicas(base.Annotations[AnnotationReplicas])
	if err != nil {
		return in, fmt.Errorf("annotation %s of Base %s/%s: %w", AnnotationReplicas, base.Namespace, base.Name, err)
	}
	in.Replicas = rs
	in.Overrides = overrides
	return in, nil
}

func objectOf(f appsv1alpha1.Feed, r Reader) (Object, error) {
	if feeds.IsChart(f) {
		ch, err := r.HelmChart(f.Namespace, f.Name)
		if err != nil {
			return Object{}, &Error{Reason: ReasonRenderFailed, Feed: f, Err: fmt.Errorf("reading the HelmChart: %w", err)}
		}
		// Its spec goes into the Description: only one its repository
		// has, as the Subscription's feed resolution checked.
		if reason, msg := feeds.ChartProblem(ch); reason != "" {
			return Object{}, &Error{Reason: reason, Feed: f, Err: errors.New(msg)}
		}
		return Object{Feed: f, Chart: ch}, nil
	}
	m, err := r.Manifest(appsv1alpha1.ManifestName(feeds.Group(f.APIVersion), f.Kind, f.Namespace, f.Name))
	if err != nil {
		return Object{}, &Error{Reason: ReasonRenderFailed, Feed: f, Err: fmt.Errorf("reading the template: %w", err)}
	}
	tmpl, err := feeds.TemplateOf(m, f)
	if err != nil {
		return Object{}, &Error{Reason: ReasonRenderFailed, Feed: f, Err: err}
	}
	return Object{Feed: f, Template: tmpl}, nil
}
