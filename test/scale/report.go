package main

import (
	"cmp"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/clusternet/clusternet/test/testbed"
)

func atOnce(o options) string {
	if o.registering <= 0 || o.registering >= o.clusters {
		return "all"
	}
	return fmt.Sprint(o.registering)
}

// scaleSection is the Markdown section of one run.
func scaleSection(r *results, o options) string {
	sec := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
	mib := func(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
	total := r.clusters + 2
	var b strings.Builder
	// A fixed heading: docs/benchmarks.md links to its anchor.
	fmt.Fprintf(&b, "## Scale: many clusters on one parent and one hub\n\n")
	fmt.Fprintf(&b, "Measured %s on %s/%s, %d CPUs, Kubernetes %s (testbed), %d clusters (%d stand-ins and 2 real), one run of %s;\nload average at the start %s (other work shares the cores).\n\n",
		r.started.UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), testbed.KubeVersion(), total, r.clusters, r.elapsed.Round(time.Second), r.load)
	fmt.Fprintf(&b, "Command: `make bench-scale` (`go run ./test/scale --hub bin/hub --agent bin/agent --clusters %d --runs %d --out docs/benchmarks.md`;\n", r.clusters, o.runs)
	if o.registrationsPerMinute > 0 {
		fmt.Fprintf(&b, "the hub runs with `--registrations-per-minute=%d`", o.registrationsPerMinute)
	} else {
		fmt.Fprintf(&b, "the hub runs with its defaults")
	}
	if o.profile != "" {
		fmt.Fprintf(&b, "; this run with `--profile`: the hub and the parent apiserver with `--profiling`, and CPU profiles over the\nfirst 20 s of each phase")
	}
	b.WriteString(")\n\n")
	fmt.Fprintf(&b, "A real parent (etcd, kube-apiserver, controller-manager) and a real hub process; %d stand-in agents in the\n", r.clusters)
	fmt.Fprintf(&b, "benchmark's process, each with its own identity: the agent's registration (bootstrap token →\n")
	fmt.Fprintf(&b, "ClusterRegistrationRequest → the hub's approval → a token sealed to its own key), heartbeats at the default 3 minutes\n")
	fmt.Fprintf(&b, "with its own token, a real tunnel (websocket through the parent to the hub), and a child that is an in-memory\n")
	fmt.Fprintf(&b, "apiserver (`test/memchild`: discovery, server-side apply, get/list/watch, delete; a Deployment reports its replicas\n")
	fmt.Fprintf(&b, "ready once applied; the child's authentication and impersonation checks are not modelled). In Pull each stand-in\n")
	fmt.Fprintf(&b, "runs pkg/deployer's controller with its own parent credentials, as the agent's generic puller; in Push the hub applies\n")
	fmt.Fprintf(&b, "through the tunnels. Beside them 2 real kwok children with the real agent (one Pull, one Dual), in every Subscription.\n\n")

	fmt.Fprintf(&b, "| | measured | target |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| all %d stand-ins registered (start → ManagedCluster Ready), %s at a time | %s | ≤ 60 s |\n", r.clusters, atOnce(o), sec(r.allRegistered))
	fmt.Fprintf(&b, "| one stand-in's registration, p50 / p99 | %s / %s | |\n", ms(percentile(r.registration, 0.5)), ms(percentile(r.registration, 0.99)))
	fmt.Fprintf(&b, "| all %d clusters Ready with their tunnel up | %s | |\n", total, sec(r.tunnelsUp))
	fmt.Fprintf(&b, "| parent API Priority and Fairness seats in use (not exempt), every tunnel up | %.0f | far below %d (a seat per tunnel) |\n", r.seatsWithTunnels, total)
	fmt.Fprintf(&b, "| parent requests per cluster to register | %.1f | |\n", r.registrationParent.requests/float64(r.clusters))
	row := func(name, target string, runs []rollout, get func(rollout) time.Duration) {
		var v []time.Duration
		for _, x := range runs {
			if d := get(x); d > 0 { // 0: that step failed (the error says)
				v = append(v, d)
			}
		}
		if len(v) == 0 {
			fmt.Fprintf(&b, "| %s | not measured | %s |\n", name, target)
			return
		}
		slices.Sort(v)
		fmt.Fprintf(&b, "| %s, p50 / max of %d | %s / %s | %s |\n", name, len(v), sec(percentile(v, 0.5)), sec(v[len(v)-1]), target)
	}
	for _, m := range []struct {
		name       string
		runs       []rollout
		readyGoal  string
		updateGoal string
	}{{"Pull", r.pull, "≤ 10 s", "≤ 10 s"}, {"Push", r.push, "≤ 20 s", "≤ 10 s"}} {
		row(m.name+": Subscription → every Description Success and Ready", m.readyGoal, m.runs, func(x rollout) time.Duration { return x.ready })
		row(m.name+": template update → every Description Success", m.updateGoal, m.runs, func(x rollout) time.Duration { return x.update })
		row(m.name+": deletion → every Description and the Subscription gone", "", m.runs, func(x rollout) time.Duration { return x.deleted })
		var reqs, cpu float64
		var mean, p99 time.Duration
		for _, x := range m.runs {
			reqs += x.parent.requests / float64(total)
			cpu += x.hubCPU.Seconds()
			mean += x.parent.mean
			p99 = max(p99, x.parent.p99)
		}
		if len(m.runs) == 0 {
			continue
		}
		n := float64(len(m.runs))
		fmt.Fprintf(&b, "| %s: parent requests per cluster per rollout (mean) | %.1f | ≤ 6 |\n", m.name, reqs/n)
		fmt.Fprintf(&b, "| %s: parent request latency during a rollout, mean / p99 bucket | %s / ≤ %s | |\n", m.name, ms(mean/time.Duration(len(m.runs))), ms(p99))
		fmt.Fprintf(&b, "| %s: hub CPU per rollout (mean) | %.1f s | |\n", m.name, cpu/n)
		again := 0
		for _, x := range m.runs {
			again = max(again, x.renders.again)
		}
		fmt.Fprintf(&b, "| %s: Descriptions rendered more than once by Ready (generation > 1), max of %d | %d of %d | 0 |\n", m.name, len(m.runs), again, total)
	}
	fmt.Fprintf(&b, "| hub CPU over the whole run | %.0f s | |\n", r.hubCPU.Seconds())
	fmt.Fprintf(&b, "| hub RSS idle before the clusters / at the end / peak | %s / %s / %s | peak ≤ 400 MiB |\n", mib(r.hubRSSIdle), mib(r.hubRSS), mib(r.hubHWM))
	fmt.Fprintf(&b, "| parent etcd database file before / after | %s / %s | |\n", mib(r.etcdBefore), mib(r.etcdAfter))
	b.WriteString(cpuTable(r))
	b.WriteString(requestKinds(r, total))
	if why := renderReasons(r); why != "" {
		fmt.Fprintf(&b, "\nWhy the hub rendered Descriptions again before Ready (its Rendered events, all runs): %s.\n", why)
	}
	fmt.Fprintf(&b, "\nA rollout's parent requests are everyone's (hub, stand-ins, the two real agents, the benchmark's watches) from the\n")
	fmt.Fprintf(&b, "Subscription's creation until it is Ready, divided by the %d clusters; the latency is of the requests that end (not\n", total)
	fmt.Fprintf(&b, "WATCH or CONNECT), the p99 the upper bound of its histogram bucket. Requests the in-memory children refused as no\n")
	fmt.Fprintf(&b, "well-behaved client would send them: %d. docs/scale.md extrapolates these figures to 10,000 clusters.\n", r.childRefusals)
	return b.String()
}

// renderReasons are the reasons of every rollout's renders again, with
// how often each was given, or "" when there were none.
func renderReasons(r *results) string {
	why := map[string]int{}
	for _, x := range slices.Concat(r.pull, r.push) {
		for w, n := range x.renders.why {
			why[w] += n
		}
	}
	var out []string
	for _, w := range slices.Sorted(maps.Keys(why)) {
		out = append(out, fmt.Sprintf("%d× %q", why[w], w))
	}
	return strings.Join(out, "; ")
}

// cpuTable is where each phase's CPU went, by party, beside what the
// machine's cores could give in that time.
func cpuTable(r *results) string {
	type phase struct {
		name string
		cpu  cpuSplit
	}
	phases := []phase{{"registration", r.registrationCPU}}
	for _, m := range []struct {
		name string
		runs []rollout
	}{{"Pull", r.pull}, {"Push", r.push}} {
		for i, x := range m.runs {
			phases = append(phases, phase{fmt.Sprintf("%s run %d → Ready", m.name, i+1), x.cpu})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nCPU seconds by party from each phase's start until it ended (/proc; the machine's busy time includes work\nthat is not the benchmark's):\n\n")
	fmt.Fprintf(&b, "| phase | wall | machine busy (of %d cores) | %s | rest |\n|---|---|---|%s---|\n", runtime.NumCPU(), strings.Join(partyOrder, " | "), strings.Repeat("---|", len(partyOrder)))
	for _, p := range phases {
		if p.cpu.wall <= 0 {
			continue
		}
		capacity := p.cpu.wall.Seconds() * float64(runtime.NumCPU())
		fmt.Fprintf(&b, "| %s | %.1f s | %.1f s (%.0f%%) |", p.name, p.cpu.wall.Seconds(), p.cpu.busy.Seconds(), 100*p.cpu.busy.Seconds()/capacity)
		var ours time.Duration
		for _, who := range partyOrder {
			ours += p.cpu.by[who]
			fmt.Fprintf(&b, " %.1f |", p.cpu.by[who].Seconds())
		}
		fmt.Fprintf(&b, " %.1f |\n", max(0, (p.cpu.busy-ours).Seconds()))
	}
	return b.String()
}

// requestKinds are the kinds of parent requests registration and each
// mode's rollouts made most of, per cluster (the mean over runs): what the
// requests per cluster are made of.
func requestKinds(r *results, clusters int) string {
	var b strings.Builder
	for _, m := range []struct {
		name    string
		windows []window
		per     int
	}{
		{"Registration", []window{r.registrationParent}, r.clusters},
		{"Pull rollout", parentWindows(r.pull), clusters},
		{"Push rollout", parentWindows(r.push), clusters},
	} {
		if len(m.windows) == 0 {
			continue
		}
		sum := map[string]float64{}
		for _, w := range m.windows {
			for k, v := range w.byKind {
				sum[k] += v / float64(len(m.windows)) / float64(m.per)
			}
		}
		kinds := slices.SortedFunc(maps.Keys(sum), func(a, b string) int {
			if c := cmp.Compare(sum[b], sum[a]); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		var parts []string
		for _, k := range kinds {
			if sum[k] < 0.05 {
				break
			}
			parts = append(parts, fmt.Sprintf("%s %.2f", k, sum[k]))
		}
		fmt.Fprintf(&b, "\n%s: parent requests per cluster by kind (≥ 0.05): %s.", m.name, strings.Join(parts, ", "))
		var throttled float64
		rejected := map[string]float64{}
		for _, w := range m.windows {
			throttled += w.throttled
			for k, v := range w.rejected {
				rejected[k] += v
			}
		}
		fmt.Fprintf(&b, " Answered 429: %.0f", throttled/float64(len(m.windows)))
		for _, k := range slices.Sorted(maps.Keys(rejected)) {
			fmt.Fprintf(&b, "; rejected by API Priority and Fairness at %s: %.0f", k, rejected[k]/float64(len(m.windows)))
		}
		b.WriteString(".\n")
	}
	return b.String()
}

func parentWindows(runs []rollout) []window {
	var out []window
	for _, x := range runs {
		out = append(out, x.parent)
	}
	return out
}
