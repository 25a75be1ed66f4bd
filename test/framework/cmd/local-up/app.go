package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"helm.sh/helm/v3/pkg/repo"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/helmrepo"
	"github.com/clusternet/clusternet/test/testbed"
)

// serveCharts is local-up's chart repository: a static folder on loopback,
// run as a testbed process so `make local-down` stops it.
func serveCharts(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: local-up serve-charts <dir> <host:port>")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: args[1], Handler: http.FileServer(http.Dir(args[0])), ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// distribute runs "Deploying Applications to Multiple Clusters" of upstream
// Clusternet's README on the local clusters: kubectl clusternet apply -f
// examples/applications/, then waits until every Description is Success. Three things in upstream's
// files cannot work here as printed, so a copy is edited: the Subscription
// names a placeholder cluster id (it gets the two children's ids), its
// Service feed says apiVersion apps/v1 (Service is v1: the hub would refuse
// the feed), and the HelmChart's repository is on the Internet (it points at
// a chart repository on loopback serving a small stand-in mysql 8.6.2).
func distribute(ctx context.Context, tb *testbed.Testbed, binDir string, ids []string) error {
	dir := filepath.Join(tb.Dir, "app-demo")
	charts := filepath.Join(dir, "charts")
	if err := os.MkdirAll(charts, 0o755); err != nil {
		return err
	}
	port, release, err := testbed.ReservePort()
	if err != nil {
		return err
	}
	repoURL := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := writeChartRepo(charts, repoURL); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	release()
	if _, err := tb.Run("chart-repo", self, "serve-charts", charts, "127.0.0.1:"+strconv.Itoa(port)); err != nil {
		return err
	}
	apps := filepath.Join(dir, "applications")
	if err := copyExamples(filepath.Join(framework.Root(), "examples", "applications"), apps, repoURL, ids); err != nil {
		return err
	}
	parent := tb.Parent
	apply := parent.Kubectl(ctx, "clusternet", "apply", "-f", apps)
	apply.Env = append(apply.Env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := apply.CombinedOutput()
	fmt.Printf("$ kubectl clusternet apply -f examples/applications/\n%s\n", out)
	if err != nil {
		return fmt.Errorf("kubectl clusternet apply: %w", err)
	}
	fmt.Println("local-up: waiting for the app to be deployed in both children...")
	var last string
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := parent.Kubectl(ctx, "get", "desc", "-A", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.phase}{"\n"}{end}`).Output()
		last = string(got)
		return err == nil && strings.Count(last, "=Success") == 2*len(ids), nil
	})
	if err != nil {
		return fmt.Errorf("descriptions not all Success: %w\n%s", err, last)
	}
	return nil
}

// writeChartRepo writes index.yaml and a stand-in chart mysql 8.6.2.
func writeChartRepo(dir, url string) error {
	ch := helmrepo.DemoChart("mysql", "8.6.2")
	data, err := helmrepo.Package(ch)
	if err != nil {
		return err
	}
	file := "mysql-8.6.2.tgz"
	if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	index := repo.NewIndexFile()
	if err := index.MustAdd(ch.Metadata, file, url, "sha256:"+hex.EncodeToString(sum[:])); err != nil {
		return err
	}
	return index.WriteFile(filepath.Join(dir, "index.yaml"), 0o644)
}

// copyExamples copies upstream Clusternet's application into dst with the edits
// distribute explains.
func copyExamples(src, dst, repoURL string, ids []string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		var obj map[string]any
		if err := yaml.Unmarshal(data, &obj); err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
		spec, _ := obj["spec"].(map[string]any)
		switch obj["kind"] {
		case "HelmChart":
			spec["repo"] = repoURL
		case "Subscription":
			spec["subscribers"] = []any{map[string]any{"clusterAffinity": map[string]any{
				"matchExpressions": []any{map[string]any{"key": "clusters.clusternet.io/cluster-id", "operator": "In", "values": ids}},
			}}}
			feeds, _ := spec["feeds"].([]any)
			for _, f := range feeds {
				if feed, _ := f.(map[string]any); feed["kind"] == "Service" {
					feed["apiVersion"] = "v1"
				}
			}
		}
		if data, err = yaml.Marshal(obj); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
