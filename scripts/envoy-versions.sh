#!/usr/bin/env bash
# make test-envoy-versions: run every bundle of scenarios/testdata/ on each
# pinned Envoy release (or those in VERSIONS) and print, per check, the
# verdict and observed outcome where they differ between versions.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
versions=${VERSIONS:-$(bin/meshtls setup --list)}
for v in $versions; do
	bin/meshtls setup --envoy-version "$v"
	echo "envoy-versions: Envoy $v" >&2
	rc=0
	bin/meshtls run --envoy-version "$v" -o json scenarios/testdata/ >"$out/$v.json" || rc=$?
	# 0 and 1 are results; anything else is a failure of the run itself.
	[ "$rc" -le 1 ] || { echo "envoy-versions: Envoy $v: exit $rc" >&2; exit "$rc"; }
done
python3 - "$out" $versions <<'PY'
import json, sys
out, versions = sys.argv[1], sys.argv[2:]
runs = {v: {(c["scenario"], c["name"]): c for c in json.load(open(f"{out}/{v}.json"))["checks"]} for v in versions}
keys = sorted(set().union(*runs.values()))
def outcome(c):
    return f'{c["verdict"]} {c["result"]} [{",".join(c["wire"])}]' if c else "missing"
differ = 0
for k in keys:
    seen = {v: outcome(runs[v].get(k)) for v in versions}
    if len(set(seen.values())) > 1:
        differ += 1
        print(f"{k[0]}/{k[1]}:")
        for v in versions:
            print(f"  {v:8} {seen[v]}")
for v in versions:
    s = json.load(open(f"{out}/{v}.json"))["summary"]
    print(f'Envoy {v}: {s["total"]} checks, {s["passed"]} passed, {s["failed"]} failed, {s["reported"]} reported')
print(f"{differ} of {len(keys)} checks differ between versions (JSON per version in {out})")
PY
