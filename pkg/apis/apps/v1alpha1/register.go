package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of application distribution.
const GroupName = "apps.clusternet.io"

// SchemeGroupVersion is the group and version these types are served at.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

var (
	// SchemeBuilder collects the functions that register these types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme registers these types with a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Resource turns a resource name into a group-qualified one, for API errors.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&Subscription{}, &SubscriptionList{},
		&Base{}, &BaseList{},
		&Description{}, &DescriptionList{},
		&Localization{}, &LocalizationList{},
		&Globalization{}, &GlobalizationList{},
		&HelmChart{}, &HelmChartList{},
		&HelmRelease{}, &HelmReleaseList{},
		&Manifest{}, &ManifestList{},
		&FeedInventory{}, &FeedInventoryList{},
	)
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
