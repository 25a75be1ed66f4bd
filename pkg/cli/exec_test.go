package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

// fakeExecutor runs "commands" in pods of one child: what each pod prints,
// by pod name, and records the exec URLs it was asked.
type fakeExecutor struct {
	mu     sync.Mutex
	urls   []string
	stdout map[string]string
	stderr map[string]string
	status map[string]int // exit status by pod; absent: 0
}

func (f *fakeExecutor) Execute(u *url.URL, cfg *rest.Config, stdin io.Reader, stdout, stderr io.Writer, tty bool, q remotecommand.TerminalSizeQueue) error {
	return f.ExecuteWithContext(context.Background(), u, cfg, stdin, stdout, stderr, tty, q)
}

func (f *fakeExecutor) ExecuteWithContext(_ context.Context, u *url.URL, _ *rest.Config, _ io.Reader, stdout, stderr io.Writer, _ bool, _ remotecommand.TerminalSizeQueue) error {
	f.mu.Lock()
	f.urls = append(f.urls, u.Path+"?"+u.RawQuery)
	f.mu.Unlock()
	parts := strings.Split(u.Path, "/")
	pod := parts[len(parts)-2] // .../pods/<pod>/exec
	_, _ = io.WriteString(stdout, f.stdout[pod])
	_, _ = io.WriteString(stderr, f.stderr[pod])
	if s := f.status[pod]; s != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", s), Code: s}
	}
	return nil
}

func execPod(name string, phase corev1.PodPhase, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}, {Name: "sidecar"}}},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func TestExec(t *testing.T) {
	app := map[string]string{"app": "web"}
	clusters := []clusterv1beta1.ManagedCluster{
		{ObjectMeta: metav1.ObjectMeta{Name: "child1", Namespace: "clusternet-child1"}, Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id1)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "child2", Namespace: "clusternet-child2"}, Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id2)}},
	}
	for _, tc := range []struct {
		name      string
		pods      map[string][]runtime.Object
		executors map[string]*fakeExecutor
		args      []string // before --
		selector  string
		container string
		wantOut   string
		wantErr   string
		stderr    string
		wantURLs  map[string][]string
	}{{
		name: "first running pod by name in each cluster",
		pods: map[string][]runtime.Object{
			id1: {execPod("web-b", corev1.PodRunning, app), execPod("web-a", corev1.PodRunning, app), execPod("other", corev1.PodRunning, nil)},
			id2: {execPod("web-a", corev1.PodPending, app), execPod("web-c", corev1.PodRunning, app)},
		},
		executors: map[string]*fakeExecutor{
			id1: {stdout: map[string]string{"web-a": "one\n"}},
			id2: {stdout: map[string]string{"web-c": "two"}, stderr: map[string]string{"web-c": "warning\n"}},
		},
		selector:  "app=web",
		container: "sidecar",
		wantOut:   "=== child1 (pod default/web-a)\none\n=== child2 (pod default/web-c)\ntwo\n",
		stderr:    "=== child2 (pod default/web-c)\nwarning\n",
		wantURLs: map[string][]string{
			id1: {"/api/v1/namespaces/default/pods/web-a/exec?command=hostname&command=-f&container=sidecar&stderr=true&stdout=true"},
			id2: {"/api/v1/namespaces/default/pods/web-c/exec?command=hostname&command=-f&container=sidecar&stderr=true&stdout=true"},
		},
	}, {
		name: "a cluster without a match or with a failing command fails the command, the others print",
		pods: map[string][]runtime.Object{
			id1: {execPod("web", corev1.PodRunning, app)},
			id2: {execPod("web", corev1.PodRunning, app)},
		},
		executors: map[string]*fakeExecutor{
			id1: {stdout: map[string]string{"web": "ok\n"}},
			id2: {stderr: map[string]string{"web": "hostname: not found\n"}, status: map[string]int{"web": 127}},
		},
		args:    []string{"web"},
		wantOut: "=== child1 (pod default/web)\nok\n=== child2 (pod default/web)\n",
		stderr:  "=== child2 (pod default/web)\nhostname: not found\nerror: cluster child2: command exited with status 127\n",
		wantErr: "error: the command failed in 1 of 2 clusters: child2 (command exited with status 127)",
		wantURLs: map[string][]string{
			id1: {"/api/v1/namespaces/default/pods/web/exec?command=hostname&command=-f&container=main&stderr=true&stdout=true"},
			id2: {"/api/v1/namespaces/default/pods/web/exec?command=hostname&command=-f&container=main&stderr=true&stdout=true"},
		},
	}, {
		name: "no running pod matches",
		pods: map[string][]runtime.Object{
			id1: {execPod("web", corev1.PodRunning, app)},
			id2: {execPod("web", corev1.PodPending, app)},
		},
		executors: map[string]*fakeExecutor{id1: {stdout: map[string]string{"web": "ok\n"}}, id2: {}},
		selector:  "app=web",
		wantOut:   "=== child1 (pod default/web)\nok\n=== child2\n",
		stderr:    "error: cluster child2: no running pod matches -l \"app=web\" in namespace \"default\" (1 pods match, none running)\n",
		wantErr:   "error: the command failed in 1 of 2 clusters: child2 (no running pod matches -l \"app=web\" in namespace \"default\" (1 pods match, none running))",
		wantURLs: map[string][]string{
			id1: {"/api/v1/namespaces/default/pods/web/exec?command=hostname&command=-f&container=main&stderr=true&stdout=true"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			o := NewExecOptions(genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
			o.Selector, o.ContainerName = tc.selector, tc.container
			o.namespace = "default"
			o.podName = strings.Join(tc.args, "")
			o.command = []string{"hostname", "-f"}
			o.list = func(context.Context) ([]clusterv1beta1.ManagedCluster, error) { return clusters, nil }
			o.childFor = func(c Cluster) (execChild, error) {
				return execChild{
					pods:     fake.NewClientset(tc.pods[c.ID]...),
					config:   &rest.Config{Host: "https://parent" + ProxyPath(c.ID), APIPath: "/api", ContentConfig: rest.ContentConfig{GroupVersion: &corev1.SchemeGroupVersion, NegotiatedSerializer: scheme.Codecs.WithoutConversion()}},
					executor: tc.executors[c.ID],
				}, nil
			}
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			checkRun(t, o.Run(context.Background()), &out, &errOut, tc.wantErr, tc.wantOut, tc.stderr)
			for id, e := range tc.executors {
				prefix := ProxyPath(id)
				var got []string
				for _, u := range e.urls {
					got = append(got, strings.TrimPrefix(u, prefix))
				}
				if diff := cmp.Diff(tc.wantURLs[id], got); diff != "" {
					t.Errorf("exec requests in %s (-want +got):\n%s", id, diff)
				}
			}
		})
	}
}

func TestExecArguments(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		atDash   int
		selector string
		wantErr  string
	}{
		{name: "no dash", args: []string{"hostname"}, atDash: -1, selector: "app=web",
			wantErr: "no command: give it after --, as in `kubectl clusternet exec -l app=nginx -- hostname`"},
		{name: "two pods", args: []string{"a", "b", "hostname"}, atDash: 2,
			wantErr: `2 arguments before -- ["a" "b"]: give one pod name, or none with -l`},
		{name: "nothing after the dash", args: []string{"web"}, atDash: 1,
			wantErr: "no command after --: give one, as in `kubectl clusternet exec -l app=nginx -- hostname`"},
		{name: "neither pod nor selector", args: []string{"hostname"}, atDash: 0,
			wantErr: "give a pod name or a label selector (-l app=nginx), as in `kubectl clusternet exec -l app=nginx -- hostname`"},
		{name: "pod and selector", args: []string{"web", "hostname"}, atDash: 1, selector: "app=web",
			wantErr: `pod "web" and -l "app=web": give a pod name or a label selector, not both`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewExecOptions(genericiooptions.IOStreams{})
			o.Selector = tc.selector
			o.list = func(context.Context) ([]clusterv1beta1.ManagedCluster, error) { return nil, errors.New("not expected") }
			o.childFor = func(Cluster) (execChild, error) { return execChild{}, errors.New("not expected") }
			err := o.Complete(parentGetter{newConfigFlags(genericiooptions.IOStreams{})}, nil, tc.args, tc.atDash)
			if err == nil {
				err = o.Validate()
			}
			if got := errorText(err); got != tc.wantErr {
				t.Errorf("error %q, want %q", got, tc.wantErr)
			}
		})
	}
}
