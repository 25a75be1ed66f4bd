package e2e

import (
	"context"
	"net"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/clusternet/clusternet/test/testbed"
)

// TestTestbed checks the testbed itself: a parent and a child where a
// Deployment's pods reach Running, and a Down that leaves no process running
// and every port free.
func TestTestbed(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: needs real control planes (run without -short)")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tb, err := testbed.Up(ctx, testbed.Options{Dir: dir, Children: 1})
	if err != nil {
		t.Fatal(err)
	}
	downed := false
	defer func() {
		if !downed {
			tb.Down()
		}
	}()

	for _, c := range tb.Clusters() {
		mustKubectl(t, c, "", "create", "deployment", "web", "--image=nginx", "--replicas=2")
		mustKubectl(t, c, "", "rollout", "status", "deployment/web", "--timeout=60s")
		mustKubectl(t, c, "", "wait", "pod", "-l", "app=web", "--for=jsonpath={.status.phase}=Running", "--timeout=60s")
		if got := mustKubectl(t, c, "", "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].status.phase}"); got != "Running Running" {
			t.Errorf("%s: pod phases %q, want two Running", c.Name, got)
		}
	}

	if _, err := testbed.Load(dir); err != nil {
		t.Errorf("Up did not record its state for Down in another process: %v", err)
	}
	tb.Down()
	downed = true
	for _, c := range tb.Clusters() {
		for _, p := range c.Processes {
			if !p.Exited() {
				t.Errorf("%s: %s (pid %d) still running after Down", c.Name, p.Name, p.Pid)
			}
		}
		u, err := url.Parse(c.URL)
		if err != nil {
			t.Fatal(err)
		}
		for _, port := range []string{u.Port(), strconv.Itoa(c.KubeletPort)} {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
			if err != nil {
				t.Errorf("%s: port %s still bound after Down: %v", c.Name, port, err)
				continue
			}
			_ = ln.Close()
		}
	}
	if _, err := os.Stat(dir + "/testbed.json"); !os.IsNotExist(err) {
		t.Errorf("Down left its state file behind (stat: %v)", err)
	}
}
