package cli

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

func TestCappedBufferKeepsTheFirstBytes(t *testing.T) {
	b := &cappedBuffer{limit: 10}
	for _, s := range []string{"0123456", "789abcdef", "ghijklmnopq"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v: a full buffer must still take the stream's writes", s, n, err)
		}
	}
	want := "0123456789\n[output truncated: 17 more bytes not shown; exec keeps 10 bytes per cluster]\n"
	if got := string(b.contents()); got != want {
		t.Errorf("contents = %q, want %q", got, want)
	}
}

// funcExecutor runs run as the command of every pod.
type funcExecutor func(ctx context.Context, stdout io.Writer) error

func (f funcExecutor) Execute(*url.URL, *rest.Config, io.Reader, io.Writer, io.Writer, bool, remotecommand.TerminalSizeQueue) error {
	return errors.New("exec must stream with a context, so that --timeout stops it")
}

func (f funcExecutor) ExecuteWithContext(ctx context.Context, _ *url.URL, _ *rest.Config, _ io.Reader, stdout, _ io.Writer, _ bool, _ remotecommand.TerminalSizeQueue) error {
	return f(ctx, stdout)
}

// signalWriter closes first at its first write.
type signalWriter struct {
	once  sync.Once
	first chan struct{}
	mu    sync.Mutex
	b     strings.Builder
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.once.Do(func() { close(w.first) })
	return w.b.Write(p)
}

func boundsExecOptions(out io.Writer, executors map[string]funcExecutor) *ExecOptions {
	o := NewExecOptions(genericiooptions.IOStreams{Out: out, ErrOut: io.Discard})
	o.namespace, o.podName, o.command = "default", "web", []string{"hostname"}
	o.list = func(context.Context) ([]clusterv1beta1.ManagedCluster, error) {
		return []clusterv1beta1.ManagedCluster{
			{ObjectMeta: metav1.ObjectMeta{Name: "child1", Namespace: "clusternet-child1"}, Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id1)}},
			{ObjectMeta: metav1.ObjectMeta{Name: "child2", Namespace: "clusternet-child2"}, Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id2)}},
		}, nil
	}
	o.childFor = func(c Cluster) (execChild, error) {
		return execChild{
			pods:     fake.NewClientset(execPod("web", corev1.PodRunning, nil)),
			config:   &rest.Config{Host: "https://parent" + ProxyPath(c.ID), APIPath: "/api", ContentConfig: rest.ContentConfig{GroupVersion: &corev1.SchemeGroupVersion, NegotiatedSerializer: scheme.Codecs.WithoutConversion()}},
			executor: executors[c.ID],
		}, nil
	}
	return o
}

// TestExecPrintsEachClusterWhenDone: the first cluster's output is
// printed while the second's command still runs.
func TestExecPrintsEachClusterWhenDone(t *testing.T) {
	out := &signalWriter{first: make(chan struct{})}
	o := boundsExecOptions(out, map[string]funcExecutor{
		id1: func(_ context.Context, stdout io.Writer) error { _, err := io.WriteString(stdout, "one\n"); return err },
		id2: func(_ context.Context, stdout io.Writer) error {
			select {
			case <-out.first:
				_, err := io.WriteString(stdout, "two\n")
				return err
			case <-time.After(5 * time.Second):
				return errors.New("child1's output was not printed while child2 ran")
			}
		},
	})
	if err := o.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := "=== child1 (pod default/web)\none\n=== child2 (pod default/web)\ntwo\n"; out.b.String() != want {
		t.Errorf("out = %q, want %q", out.b.String(), want)
	}
}

// TestExecTimeout: --timeout stops a command that does not end.
func TestExecTimeout(t *testing.T) {
	forever := func(ctx context.Context, _ io.Writer) error { <-ctx.Done(); return ctx.Err() }
	quick := func(_ context.Context, stdout io.Writer) error { _, err := io.WriteString(stdout, "ok\n"); return err }
	o := boundsExecOptions(io.Discard, map[string]funcExecutor{id1: quick, id2: forever})
	o.Timeout = 100 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- o.Run(context.Background()) }()
	select {
	case err := <-done:
		if want := "child2 (stopped after --timeout 100ms"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to contain %q", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exec still runs 10s after its --timeout")
	}
}
