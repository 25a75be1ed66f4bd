package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1beta1 "k8s.io/apimachinery/pkg/apis/meta/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/cmd/get"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// Annotations fan-out output puts on each object (-o json|yaml|jsonpath|...)
// to say which child it came from.
const (
	AnnotationClusterName = "clusters.clusternet.io/cluster-name"
	AnnotationClusterID   = "clusters.clusternet.io/cluster-id"
)

const flagClusters = "clusters"

// fanoutParallelism bounds the children asked at once.
const fanoutParallelism = 16

// FanoutGetOptions are the options of `kubectl clusternet get ... --clusters`:
// live objects from many children, listed in parallel through the parent.
type FanoutGetOptions struct {
	Clusters string

	Args          []string
	Namespace     string
	AllNamespaces bool
	LabelSelector string
	FieldSelector string
	ChunkSize     int64
	NoHeaders     bool
	ShowLabels    bool
	LabelColumns  []string
	OutputFormat  string

	printFlags *get.PrintFlags
	targets    []Cluster
	list       clusterLister
	getterFor  func(c Cluster) genericclioptions.RESTClientGetter

	genericiooptions.IOStreams
}

// addFanout gives kubectl's get a --clusters flag that lists live objects of
// children instead of templates.
func addFanout(getCmd *cobra.Command, parent parentGetter, userFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) {
	o := &FanoutGetOptions{IOStreams: streams}
	getCmd.Flags().StringVar(&o.Clusters, flagClusters, o.Clusters,
		"List live objects of these child clusters instead of templates: \"all\", or a comma-separated list of ManagedCluster names or cluster ids. Output gets a CLUSTER column.")
	if err := getCmd.RegisterFlagCompletionFunc(flagClusters, clusterListCompletion(parent)); err != nil {
		panic(err)
	}
	getCmd.Example += "\n\n" + `  # List the pods of every child cluster, with a CLUSTER column
  kubectl clusternet get pods -A --clusters all

  # List deployments in two children by name or cluster id
  kubectl clusternet get deploy -n foo --clusters clusternet-cluster-dzqkw,dc91021d-2361-4f6d-a404-7c33b9e01118`
	templatesGet := getCmd.RunE
	getCmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !cmd.Flags().Changed(flagClusters) {
			return templatesGet(cmd, args)
		}
		if err := o.Complete(cmd, args, parent, userFlags); err != nil {
			return err
		}
		if err := o.Validate(cmd); err != nil {
			return err
		}
		cmd.SilenceUsage = true
		return o.Run(cmd.Context())
	}
}

// Complete reads get's flags and resolves the clusters.
func (o *FanoutGetOptions) Complete(cmd *cobra.Command, args []string, parent parentGetter, userFlags *genericclioptions.ConfigFlags) error {
	o.Args = args
	flags := cmd.Flags()
	var err error
	if o.Namespace, _, err = parent.ToRawKubeConfigLoader().Namespace(); err != nil {
		return err
	}
	o.AllNamespaces = cmdutil.GetFlagBool(cmd, "all-namespaces")
	o.LabelSelector = cmdutil.GetFlagString(cmd, "selector")
	o.FieldSelector = cmdutil.GetFlagString(cmd, "field-selector")
	o.ChunkSize = cmdutil.GetFlagInt64(cmd, "chunk-size")
	o.NoHeaders = cmdutil.GetFlagBool(cmd, "no-headers")
	o.ShowLabels = cmdutil.GetFlagBool(cmd, "show-labels")
	o.LabelColumns = cmdutil.GetFlagStringSlice(cmd, "label-columns")
	o.OutputFormat = cmdutil.GetFlagString(cmd, "output")

	o.printFlags = get.NewGetPrintFlags()
	o.printFlags.OutputFormat = &o.OutputFormat
	o.printFlags.NoHeaders = &o.NoHeaders
	o.printFlags.CustomColumnsFlags.NoHeaders = o.NoHeaders
	if f := flags.Lookup("template"); f != nil {
		template := f.Value.String()
		o.printFlags.TemplateFlags.TemplateArgument = &template
	}
	if f := flags.Lookup("allow-missing-template-keys"); f != nil {
		allow := f.Value.String() == "true"
		o.printFlags.TemplateFlags.AllowMissingKeys = &allow
	}
	if spec, ok := strings.CutPrefix(o.OutputFormat, "custom-columns="); ok {
		o.OutputFormat = `custom-columns=CLUSTER:.metadata.annotations.clusters\.clusternet\.io/cluster-name,` + spec
	}

	parentCfg, err := parent.ToRESTConfig()
	if err != nil {
		return err
	}
	if o.list == nil {
		o.list = parentClusterLister(parentCfg)
	}
	if o.getterFor == nil {
		o.getterFor = func(c Cluster) genericclioptions.RESTClientGetter { return childConfigFlags(userFlags, c.ID) }
	}
	return nil
}

// Validate checks the flags; what --clusters cannot do is refused by name.
func (o *FanoutGetOptions) Validate(cmd *cobra.Command) error {
	if strings.TrimSpace(o.Clusters) == "" {
		return fmt.Errorf(`--clusters %q: give "all" or a comma-separated list of ManagedCluster names or cluster ids`, o.Clusters)
	}
	for _, name := range []string{"raw", "watch", "watch-only", "filename", "kustomize", "sort-by", "subresource"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			return fmt.Errorf("--%s cannot be used with --clusters: use `kubectl clusternet --cluster <name> get ...` for one child", name)
		}
	}
	if len(o.Args) == 0 {
		return fmt.Errorf("--clusters needs a resource type, as in `kubectl clusternet get pods --clusters all`")
	}
	return nil
}

// forEachCluster calls do for every target at once, at most
// fanoutParallelism at a time, and returns when all calls have.
func forEachCluster(targets []Cluster, do func(i int, c Cluster)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, fanoutParallelism)
	for i, c := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			do(i, c)
		}()
	}
	wg.Wait()
}

// parentLister lists the ManagedClusters of the parent the user's flags name.
func parentLister(parent parentGetter) (clusterLister, error) {
	cfg, err := parent.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return parentClusterLister(cfg), nil
}

// clusterResult is what one child answered.
type clusterResult struct {
	cluster Cluster
	infos   []*resource.Info
	err     error
}

// Run lists the objects of every cluster in parallel and prints them. A
// cluster that fails is reported on the error stream; the others are
// printed, and the command fails at the end.
func (o *FanoutGetOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	targets, err := selectClusters(ctx, o.list, o.Clusters)
	if err != nil {
		return err
	}
	if o.targets = targets; len(o.targets) == 0 {
		return errors.New("no child cluster has registered with this parent: see `kubectl clusternet get mcls -A`")
	}

	results := make([]clusterResult, len(o.targets))
	forEachCluster(o.targets, func(i int, c Cluster) {
		infos, err := o.fetch(c)
		results[i] = clusterResult{cluster: c, infos: infos, err: err}
	})

	var failed []string
	for _, r := range results {
		if r.err == nil {
			continue
		}
		failed = append(failed, r.cluster.String())
		for _, e := range flattenErrors(r.err) {
			_, _ = fmt.Fprintf(o.ErrOut, "error: cluster %s: %s\n", r.cluster, e)
		}
	}
	if err := o.print(results); err != nil {
		return err
	}
	if len(failed) > 0 {
		return &ExitError{Code: 1, Message: fmt.Sprintf("error: %d of %d clusters failed: %s", len(failed), len(results), strings.Join(failed, ", "))}
	}
	return nil
}

func flattenErrors(err error) []error {
	var agg utilerrors.Aggregate
	if errors.As(err, &agg) {
		return agg.Errors()
	}
	return []error{err}
}

func (o *FanoutGetOptions) humanReadable() bool {
	return o.OutputFormat == "" || o.OutputFormat == "wide"
}

// fetch lists what args name in one child, as tables for human output.
func (o *FanoutGetOptions) fetch(c Cluster) ([]*resource.Info, error) {
	b := resource.NewBuilder(o.getterFor(c)).
		Unstructured().
		NamespaceParam(o.Namespace).DefaultNamespace().AllNamespaces(o.AllNamespaces).
		LabelSelectorParam(o.LabelSelector).
		FieldSelectorParam(o.FieldSelector).
		RequestChunksOf(o.ChunkSize).
		// The builder rewrites aliases in args[0] in place, and every cluster
		// is fetched in parallel: each gets its own copy.
		ResourceTypeOrNameArgs(true, slices.Clone(o.Args)...).
		ContinueOnError().
		Latest().
		Flatten()
	if o.humanReadable() {
		b = b.TransformRequests(func(req *rest.Request) {
			req.SetHeader("Accept", strings.Join([]string{
				fmt.Sprintf("application/json;as=Table;v=%s;g=%s", metav1.SchemeGroupVersion.Version, metav1.GroupName),
				fmt.Sprintf("application/json;as=Table;v=%s;g=%s", metav1beta1.SchemeGroupVersion.Version, metav1beta1.GroupName),
				"application/json",
			}, ","))
		})
	}
	return b.Do().Infos()
}

func (o *FanoutGetOptions) print(results []clusterResult) error {
	switch {
	case o.humanReadable():
		return o.printTables(results)
	case o.OutputFormat == "name":
		return o.printNames(results)
	default:
		return o.printList(results)
	}
}

// mergedTable is one kind's rows from every cluster.
type mergedTable struct {
	gk      schema.GroupKind
	columns []metav1.TableColumnDefinition
	rows    []metav1.TableRow
}

func (o *FanoutGetOptions) printTables(results []clusterResult) error {
	var tables []*mergedTable
	byKind := map[schema.GroupKind]*mergedTable{}
	for _, r := range results {
		for _, info := range r.infos {
			table, err := decodeTable(info.Object)
			if err != nil {
				_, _ = fmt.Fprintf(o.ErrOut, "error: cluster %s: %v\n", r.cluster, err)
				continue
			}
			gk := info.Mapping.GroupVersionKind.GroupKind()
			m := byKind[gk]
			if m == nil {
				m = &mergedTable{gk: gk}
				byKind[gk] = m
				tables = append(tables, m)
			}
			o.merge(m, r.cluster, table)
		}
	}
	rows := 0
	for _, m := range tables {
		rows += len(m.rows)
	}
	if rows == 0 {
		o.printNoResources()
		return nil
	}
	for i, m := range tables {
		if len(m.rows) == 0 {
			continue
		}
		if i > 0 && !o.NoHeaders {
			_, _ = fmt.Fprintln(o.Out)
		}
		printer := printers.NewTablePrinter(printers.PrintOptions{
			NoHeaders:    o.NoHeaders,
			Wide:         true,
			WithKind:     len(tables) > 1,
			Kind:         m.gk,
			ShowLabels:   o.ShowLabels,
			ColumnLabels: o.LabelColumns,
		})
		t := &metav1.Table{ColumnDefinitions: m.columns, Rows: m.rows}
		if err := printer.PrintObj(t, o.Out); err != nil {
			return err
		}
	}
	return nil
}

// merge adds a cluster's table to m: CLUSTER first, NAMESPACE next for -A,
// then the server's columns (those of priority 0 unless -o wide).
func (o *FanoutGetOptions) merge(m *mergedTable, c Cluster, t *metav1.Table) {
	if m.columns == nil {
		m.columns = []metav1.TableColumnDefinition{{Name: "Cluster", Type: "string"}}
		if o.AllNamespaces {
			m.columns = append(m.columns, metav1.TableColumnDefinition{Name: "Namespace", Type: "string"})
		}
	}
	fixed := 1
	if o.AllNamespaces {
		fixed = 2
	}
	// Place each of this table's columns by name, adding new ones at the end.
	index := make([]int, len(t.ColumnDefinitions))
	for i, col := range t.ColumnDefinitions {
		index[i] = -1
		if col.Priority > 0 && o.OutputFormat != "wide" {
			continue
		}
		for j := fixed; j < len(m.columns); j++ {
			if m.columns[j].Name == col.Name {
				index[i] = j
			}
		}
		if index[i] < 0 {
			col.Priority = 0
			m.columns = append(m.columns, col)
			index[i] = len(m.columns) - 1
		}
	}
	for _, row := range t.Rows {
		cells := make([]interface{}, len(m.columns))
		for j := range cells {
			cells[j] = ""
		}
		cells[0] = c.String()
		if o.AllNamespaces {
			if obj, err := meta.Accessor(row.Object.Object); err == nil {
				cells[1] = obj.GetNamespace()
			}
		}
		for i, cell := range row.Cells {
			if i < len(index) && index[i] >= 0 {
				cells[index[i]] = cell
			}
		}
		m.rows = append(m.rows, metav1.TableRow{Cells: cells, Conditions: row.Conditions, Object: row.Object})
	}
	// Rows added before a new column arrived get an empty cell for it.
	for i := range m.rows {
		for len(m.rows[i].Cells) < len(m.columns) {
			m.rows[i].Cells = append(m.rows[i].Cells, "")
		}
	}
}

func (o *FanoutGetOptions) printNoResources() {
	if o.AllNamespaces {
		_, _ = fmt.Fprintln(o.ErrOut, "No resources found")
		return
	}
	_, _ = fmt.Fprintf(o.ErrOut, "No resources found in %s namespace.\n", o.Namespace)
}

// printNames prints "<cluster> <kind>.<group>/<name>" lines, for scripts to
// read as two fields.
func (o *FanoutGetOptions) printNames(results []clusterResult) error {
	printer, err := o.printFlags.ToPrinter()
	if err != nil {
		return err
	}
	printed := false
	for _, r := range results {
		for _, info := range r.infos {
			var buf bytes.Buffer
			if err := printer.PrintObj(info.Object, &buf); err != nil {
				return err
			}
			for _, line := range strings.SplitAfter(buf.String(), "\n") {
				if line != "" {
					printed = true
					_, _ = io.WriteString(o.Out, r.cluster.String()+" "+line)
				}
			}
		}
	}
	if !printed {
		o.printNoResources()
	}
	return nil
}

// printList prints one List holding every cluster's objects, each annotated
// with its cluster's name and id.
func (o *FanoutGetOptions) printList(results []clusterResult) error {
	printer, err := o.printFlags.ToPrinter()
	if err != nil {
		return err
	}
	list := &unstructured.UnstructuredList{Object: map[string]interface{}{
		"apiVersion": "v1", "kind": "List", "metadata": map[string]interface{}{"resourceVersion": ""},
	}}
	for _, r := range results {
		for _, info := range r.infos {
			u, ok := info.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			u = u.DeepCopy()
			annotations := u.GetAnnotations()
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations[AnnotationClusterName] = r.cluster.Name
			annotations[AnnotationClusterID] = r.cluster.ID
			u.SetAnnotations(annotations)
			list.Items = append(list.Items, *u)
		}
	}
	return printer.PrintObj(list, o.Out)
}

// decodeTable turns a Table a server returned (as unstructured) into a
// metav1.Table with decoded row objects.
func decodeTable(obj runtime.Object) (*metav1.Table, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || u.GetKind() != "Table" {
		return nil, fmt.Errorf("the server answered with %T, not a Table", obj)
	}
	table := &metav1.Table{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, table); err != nil {
		return nil, err
	}
	for i := range table.Rows {
		row := &table.Rows[i]
		if row.Object.Raw == nil || row.Object.Object != nil {
			continue
		}
		converted, err := runtime.Decode(unstructured.UnstructuredJSONScheme, row.Object.Raw)
		if err != nil {
			return nil, err
		}
		row.Object.Object = converted
	}
	return table, nil
}

// childConfigFlags are the user's kubectl flags with the server moved onto
// a child's proxy path: discovery is cached per child on disk, as kubectl
// caches it per server.
func childConfigFlags(user *genericclioptions.ConfigFlags, clusterID string) *genericclioptions.ConfigFlags {
	c := genericclioptions.NewConfigFlags(true).WithDiscoveryBurst(300).WithDiscoveryQPS(50.0)
	c.CacheDir, c.KubeConfig, c.ClusterName, c.AuthInfoName, c.Context = user.CacheDir, user.KubeConfig, user.ClusterName, user.AuthInfoName, user.Context
	c.Namespace, c.APIServer, c.TLSServerName, c.Insecure = user.Namespace, user.APIServer, user.TLSServerName, user.Insecure
	c.CertFile, c.KeyFile, c.CAFile, c.BearerToken = user.CertFile, user.KeyFile, user.CAFile, user.BearerToken
	c.Impersonate, c.ImpersonateUID, c.ImpersonateGroup = user.Impersonate, user.ImpersonateUID, user.ImpersonateGroup
	c.Username, c.Password, c.Timeout, c.DisableCompression = user.Username, user.Password, user.Timeout, user.DisableCompression
	c.WrapConfigFn = func(cfg *rest.Config) *rest.Config { return ChildConfig(cfg, clusterID, nil) }
	return c
}
