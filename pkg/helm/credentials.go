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

// ReadCredentials reads the Secret ref names (in defaultNamespace when ref
// has none); nil ref means no credentials.
func ReadCredentials(ctx context.Context, kube kubernetes.Interface, ref *appsv1alpha1.SecretReference, defaultNamespace string) (*Credentials, error) {
	if ref == nil {
		return nil, nil
	}
	ns := ref.Namespace
	if ns == "" {
		ns = defaultNamespace
	}
	secret, err := kube.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("spec.chartPullSecret %s/%s does not exist: create it with username and password keys, or remove spec.chartPullSecret", ns, ref.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading spec.chartPullSecret %s/%s: %w", ns, ref.Name, err)
	}
	return CredentialsFromSecret(secret)
}
