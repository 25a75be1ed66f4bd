package helm

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// The keys of a chart pull Secret.
const (
	SecretUsernameKey = "username"
	SecretPasswordKey = "password"
)

// CredentialsFromSecret reads the username and password keys of a chart pull
// Secret.
func CredentialsFromSecret(secret *corev1.Secret) (*Credentials, error) {
	user, pass := secret.Data[SecretUsernameKey], secret.Data[SecretPasswordKey]
	if len(user) == 0 || len(pass) == 0 {
		return nil, fmt.Errorf("chart pull Secret %s/%s must have non-empty %q and %q keys: add them (kubectl create secret generic %s --from-literal=username=... --from-literal=password=...)",
			secret.Namespace, secret.Name, SecretUsernameKey, SecretPasswordKey, secret.Name)
	}
	return &Credentials{Username: string(user), Password: string(pass)}, nil
}

// CheckPullSecretNamespace refuses a chart pull Secret outside namespace,
// the namespace of the object of kind (HelmChart, HelmRelease) that names
// it in spec.chartPullSecret. Whoever may write that object must not be
// able to make Clusternet read, and send to a repository of their choosing,
// a Secret of a namespace they have no access to.
func CheckPullSecretNamespace(ref *appsv1alpha1.SecretReference, kind, namespace string) error {
	if ref == nil || ref.Namespace == "" || ref.Namespace == namespace {
		return nil
	}
	return fmt.Errorf("spec.chartPullSecret.namespace %q is not the %s's namespace %q: a chart pull Secret is read only from the %s's own namespace: create Secret %q in namespace %q and remove spec.chartPullSecret.namespace",
		ref.Namespace, kind, namespace, kind, ref.Name, namespace)
}

// ReadCredentials reads the chart pull Secret ref names for an object of
// kind (HelmChart, HelmRelease) in namespace; a Secret of another namespace
// is refused (CheckPullSecretNamespace). A nil ref means no credentials.
func ReadCredentials(ctx context.Context, kube kubernetes.Interface, ref *appsv1alpha1.SecretReference, kind, namespace string) (*Credentials, error) {
	if ref == nil {
		return nil, nil
	}
	if err := CheckPullSecretNamespace(ref, kind, namespace); err != nil {
		return nil, err
	}
	secret, err := kube.CoreV1().Secrets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("spec.chartPullSecret %s/%s does not exist: create it with username and password keys, or remove spec.chartPullSecret", namespace, ref.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading spec.chartPullSecret %s/%s: %w", namespace, ref.Name, err)
	}
	return CredentialsFromSecret(secret)
}
