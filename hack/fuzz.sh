#!/usr/bin/env bash
# Runs every Go fuzz target under pkg/ for FUZZTIME each (make fuzz, make test-fuzz).
# Targets are found by grep, so a new func FuzzXxx(f *testing.F) joins by itself;
# go test fuzzes one target of one package at a time.
#
#   FUZZTIME (10s)  FUZZ_PARALLEL (1 worker)  GO (go)
#   FUZZ_SHARD=i/n  run only every n-th target from the i-th (0-based), so a long
#                   soak can be split over several shells.
#
# Go 1.26's fuzz coordinator can report "context deadline exceeded" as a failure
# when -fuzztime runs out while a worker is mid-call (go.dev/issue/75804, fixed in
# Go 1.27): the run was complete and nothing crashed. That one outcome is told
# apart from a real finding by what the coordinator leaves behind: a crasher,
# hang or failing property always writes its input to testdata/fuzz/<target>/,
# the race never does. Anything else that fails still fails the run.
set -uo pipefail

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
FUZZ_PARALLEL=${FUZZ_PARALLEL:-1}
SHARD=${FUZZ_SHARD:-0/1}
shard_i=${SHARD%/*}
shard_n=${SHARD#*/}

cd "$(dirname "$0")/.."

corpus_files() { # dir target
	find "$1/testdata/fuzz/$2" -type f 2>/dev/null | sort
}

n=0 passed=0 raced=0
while read -r file; do
	dir=./$(dirname "$file")
	for target in $(sed -nE 's/^func (Fuzz[A-Za-z0-9_]+)\(f \*testing\.F\).*/\1/p' "$file"); do
		n=$((n + 1))
		(( (n - 1) % shard_n == shard_i )) || continue
		echo "fuzz: $target in $dir for $FUZZTIME"
		before=$(corpus_files "$dir" "$target")
		out=$(mktemp)
		$GO test -run='^$' -fuzz="^$target\$" -fuzztime="$FUZZTIME" -parallel="$FUZZ_PARALLEL" "$dir" 2>&1 | tee "$out"
		rc=${PIPESTATUS[0]}
		after=$(corpus_files "$dir" "$target")
		if ((rc == 0)); then
			passed=$((passed + 1))
		elif [[ $before == "$after" ]] &&
			grep -qx -- "--- FAIL: $target ([0-9.]*s)" "$out" &&
			[[ $(grep -A1 -x -- "--- FAIL: $target ([0-9.]*s)" "$out" | tail -1 | tr -d '[:space:]') == contextdeadlineexceeded ]] &&
			! grep -q -e '^panic:' -e 'Failing input written' "$out"; then
			echo "fuzz: $target ran its $FUZZTIME and wrote no failing input; the \"context deadline exceeded\" above is Go's fuzztime race (go.dev/issue/75804), not a finding"
			raced=$((raced + 1))
		else
			echo "fuzz: $target FAILED (exit $rc); a failing input, if any, is under $dir/testdata/fuzz/$target/" >&2
			rm -f "$out"
			exit 1
		fi
		rm -f "$out"
	done
done < <(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' pkg | sort)

echo "fuzz: $((passed + raced)) targets ran $FUZZTIME each without a finding ($raced of them ended on Go's fuzztime race)"
