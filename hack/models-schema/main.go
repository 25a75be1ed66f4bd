// Command models-schema writes the OpenAPI (v2) schema of Clusternet's
// custom resources that applyconfiguration-gen embeds into
// pkg/generated/applyconfiguration/internal (make generate). That schema is
// what the generated NewTypeConverter, and so the fake clientset's
// NewClientset (a field-managed tracker), knows the types by.
//
// It is built from the CRDs in deploy/crds, the way the API server builds
// the schema it uses for these resources' managed fields, and not from
// openapi-gen: the types refer to core/v1 types (Toleration, Taint,
// ResourceList), whose openapi-gen definitions would add all of core/v1 to
// pkg/generated/openapi, which the hub links. Definitions are named after
// the Go types (scheme.ToOpenAPIDefinitionName), the names both
// applyconfiguration-gen and the type converter look them up by.
//
//	go run ./hack/models-schema deploy/crds > schema.json
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: models-schema <CRD dir>")
		os.Exit(2)
	}
	swagger, err := build(os.Args[1])
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(swagger)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "models-schema:", err)
		os.Exit(1)
	}
}

func build(dir string) (*spec.Swagger, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1alpha1.AddToScheme, clusterv1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRDs (*.yaml) in %q: run controller-gen first", dir)
	}
	definitions := spec.Definitions{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(data, &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		// deploy/crds also holds KEP-1645's CRDs as mcs-api ships them: not
		// Clusternet's kinds, and not what the hub's type converter serves.
		if !scheme.IsGroupRegistered(crd.Spec.Group) {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if err := add(definitions, scheme, &crd, v.Name); err != nil {
				return nil, fmt.Errorf("%s, version %s: %w", f, v.Name, err)
			}
		}
	}
	return &spec.Swagger{SwaggerProps: spec.SwaggerProps{
		Swagger:     "2.0",
		Info:        &spec.Info{InfoProps: spec.InfoProps{Title: "Clusternet custom resources", Version: "unversioned"}},
		Paths:       &spec.Paths{Paths: map[string]spec.PathItem{}},
		Definitions: definitions,
	}}, nil
}

// add puts into definitions the schema of crd's kind in version, named
// after its Go type, and the Kubernetes types it refers to (ObjectMeta and
// what that refers to).
func add(definitions spec.Definitions, scheme *runtime.Scheme, crd *apiextensionsv1.CustomResourceDefinition, version string) error {
	// As the API server does for managed fields: no value validations (they
	// do not shape the object), nullable fields untyped.
	swagger, err := builder.BuildOpenAPIV2(crd, version, builder.Options{V2: true, StripValueValidation: true, StripNullable: true})
	if err != nil {
		return err
	}
	gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: version, Kind: crd.Spec.Names.Kind}
	goName, err := scheme.ToOpenAPIDefinitionName(gvk)
	if err != nil {
		return fmt.Errorf("no Go type for %s: %w", gvk, err)
	}
	listGVK := gvk.GroupVersion().WithKind(crd.Spec.Names.ListKind)
	found := false
	for name, def := range swagger.Definitions {
		switch of, err := gvkOf(def); {
		case err != nil:
			return fmt.Errorf("definition %s: %w", name, err)
		case of == gvk:
			definitions[goName] = def
			found = true
		case of == listGVK:
			// Lists are not applied; and this one refers to the kind by
			// its CRD name.
		default:
			definitions[name] = def
		}
	}
	if !found {
		return fmt.Errorf("the CRD's OpenAPI has no definition of %s", gvk)
	}
	return nil
}

// gvkOf is the kind a definition says it is the schema of (none for the
// types objects refer to).
func gvkOf(def spec.Schema) (schema.GroupVersionKind, error) {
	ext, ok := def.Extensions[gvkExtension]
	if !ok {
		return schema.GroupVersionKind{}, nil
	}
	data, err := json.Marshal(ext)
	if err != nil {
		return schema.GroupVersionKind{}, err
	}
	var gvks []struct{ Group, Version, Kind string }
	if err := json.Unmarshal(data, &gvks); err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("%s: %w", gvkExtension, err)
	}
	if len(gvks) != 1 {
		return schema.GroupVersionKind{}, nil
	}
	return schema.GroupVersionKind{Group: gvks[0].Group, Version: gvks[0].Version, Kind: gvks[0].Kind}, nil
}

const gvkExtension = "x-kubernetes-group-version-kind"
