package shadow

import (
	"fmt"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// scheme knows only the meta types the handlers encode themselves (Status,
// WatchEvent, options, discovery documents). Templates are never typed:
// they are kept and served as the user wrote them, in whatever version.
var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

func init() {
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	scheme.AddUnversionedTypes(schema.GroupVersion{Version: "v1"},
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
}

// builtIn is client-go's scheme: a kind it knows is a built-in Kubernetes
// kind, which gets strategic merge patch (with its Go type as the patch
// schema) and protobuf request bodies.
var builtIn = clientgoscheme.Scheme

// textMediaTypes are JSON and YAML: every template is served in these.
func textMediaTypes() []runtime.SerializerInfo {
	var out []runtime.SerializerInfo
	for _, info := range codecs.SupportedMediaTypes() {
		if info.MediaType == runtime.ContentTypeJSON || info.MediaType == runtime.ContentTypeYAML {
			out = append(out, info)
		}
	}
	return out
}

// negotiatedSerializer encodes templates as they are (no conversion: a
// template keeps the apiVersion it was written in) and decodes request bodies
// into unstructured objects.
type negotiatedSerializer struct {
	mediaTypes []runtime.SerializerInfo
}

// newNegotiatedSerializer serves JSON and YAML; for built-in kinds it also
// reads protobuf request bodies, which client-go's typed clients send.
func newNegotiatedSerializer(acceptProtobuf bool) negotiatedSerializer {
	types := textMediaTypes()
	if acceptProtobuf {
		p := protobufTemplates{proto: protobuf.NewSerializer(builtIn, builtIn)}
		types = append(types, runtime.SerializerInfo{
			MediaType:        runtime.ContentTypeProtobuf,
			MediaTypeType:    "application",
			MediaTypeSubType: "vnd.kubernetes.protobuf",
			Serializer:       p,
			StrictSerializer: p,
		})
	}
	return negotiatedSerializer{mediaTypes: types}
}

func (s negotiatedSerializer) SupportedMediaTypes() []runtime.SerializerInfo { return s.mediaTypes }

func (s negotiatedSerializer) EncoderForVersion(encoder runtime.Encoder, gv runtime.GroupVersioner) runtime.Encoder {
	return asWritten{Encoder: encoder, typed: runtime.WithVersionEncoder{Version: gv, Encoder: encoder, ObjectTyper: scheme}}
}

// asWritten encodes templates (and lists of them) with the apiVersion they
// carry; typed objects (Status, WatchEvent) get theirs from the scheme.
type asWritten struct {
	runtime.Encoder
	typed runtime.Encoder
}

func (e asWritten) Encode(obj runtime.Object, w io.Writer) error {
	if _, ok := obj.(runtime.Unstructured); ok {
		return e.Encoder.Encode(obj, w)
	}
	return e.typed.Encode(obj, w)
}

func (s negotiatedSerializer) DecoderToVersion(decoder runtime.Decoder, _ runtime.GroupVersioner) runtime.Decoder {
	return decoder
}

// protobufTemplates reads a built-in kind sent as protobuf into an
// unstructured template. Responses are never protobuf (the request scope
// restricts them to JSON and YAML), except errors, which are typed.
type protobufTemplates struct {
	proto runtime.Serializer
}

func (p protobufTemplates) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	typed, gvk, err := p.proto.Decode(data, defaults, nil)
	if err != nil {
		return nil, gvk, err
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(typed)
	if err != nil {
		return nil, gvk, err
	}
	u, ok := into.(*unstructured.Unstructured)
	if !ok || u == nil {
		u = &unstructured.Unstructured{}
	}
	u.SetUnstructuredContent(content)
	u.SetGroupVersionKind(*gvk)
	return u, gvk, nil
}

func (p protobufTemplates) Encode(obj runtime.Object, w io.Writer) error {
	if u, ok := obj.(runtime.Unstructured); ok {
		typed, err := builtIn.New(obj.GetObjectKind().GroupVersionKind())
		if err != nil {
			return fmt.Errorf("encoding a template as protobuf: %w", err)
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), typed); err != nil {
			return err
		}
		obj = typed
	}
	return p.proto.Encode(obj, w)
}

func (p protobufTemplates) Identifier() runtime.Identifier { return "shadow-protobuf" }

// unstructuredCreator makes every kind an unstructured object.
type unstructuredCreator struct{}

func (unstructuredCreator) New(kind schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kind)
	return u, nil
}

// noDefaults leaves templates as written: defaults are the child's business.
type noDefaults struct{}

func (noDefaults) Default(runtime.Object) {}

// passThrough converts nothing: a template is stored and served in the
// version it was written in.
type passThrough struct{}

func (passThrough) Convert(in, out, context interface{}) error {
	return fmt.Errorf("templates are not converted")
}

func (passThrough) ConvertToVersion(in runtime.Object, _ runtime.GroupVersioner) (runtime.Object, error) {
	return in, nil
}

// ConvertFieldLabel allows the two field selectors every template supports.
func (passThrough) ConvertFieldLabel(gvk schema.GroupVersionKind, label, value string) (string, string, error) {
	switch label {
	case "metadata.name", "metadata.namespace":
		return label, value, nil
	}
	return "", "", fmt.Errorf("field label %q is not supported for %s templates: use metadata.name or metadata.namespace", label, gvk.Kind)
}
