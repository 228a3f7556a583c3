#!/usr/bin/env bash
# Checks the observability assets the charm ships (observability/):
#   - promtool check rules  on every rule file in prometheus_alert_rules/
#   - a lint of the alerts: `for`, severity critical|warning, summary and
#     description, unique names, and each alert shown firing by a unit test
#   - promtool test rules   on every unit-test file in prometheus_alert_rules/tests/
#   - both Grafana dashboards: valid JSON, title/uid/tags, the prometheusds and
#     Juju topology template variables, every panel on ${prometheusds}, and
#     every selector of every target expression filtered by $juju_model and
#     $juju_application (and the model uuid and unit variables)
#   - every dashboard expression parses as PromQL (via promtool check rules)
#   - every recording rule a dashboard or alert uses is defined
#   - every raw metric name used exists: Synapse's in the registry of the
#     installed Synapse (skipped when its venv is missing), the stats
#     exporter's in crates/stats-exporter/src/metrics.rs
#
# Needs promtool (Debian package `prometheus`, installed by scripts/setup.sh)
# and a python3 with PyYAML.
# Prints "prometheus rules: N passed, M failed" and exits non-zero on any failure.
set -uo pipefail

SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
OBS=$REPO/observability
RULES_DIR=$OBS/prometheus_alert_rules
TESTS_DIR=$RULES_DIR/tests
DASH_DIR=$OBS/grafana_dashboards
EXPORTER_SRC=$REPO/crates/stats-exporter/src/metrics.rs
TOOLS=${SYNAPSE_CHARM_TOOLS:-/opt/synapse-charm}
SYNAPSE_PY=$TOOLS/synapse-venv/bin/python

die() { echo "prometheus rules: $*" >&2; exit 2; }

PROMTOOL=${PROMTOOL:-$(command -v promtool || true)}
[[ -n $PROMTOOL && -x $PROMTOOL ]] || die "promtool not found (apt-get install prometheus, or run scripts/setup.sh)"

PY=
for cand in python3 /usr/bin/python3 "$SYNAPSE_PY"; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import yaml' 2>/dev/null; then
        PY=$cand
        break
    fi
done
[[ -n $PY ]] || die "no python3 with PyYAML found"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    if [[ -n ${2:-} && -s $2 ]]; then sed 's/^/       /' "$2"; fi
}
# check NAME CMD...: runs CMD, output kept for the failure report.
check() {
    local name=$1
    shift
    if "$@" >"$WORK/out" 2>&1; then pass "$name"; else fail "$name" "$WORK/out"; fi
}

shopt -s nullglob
rule_files=("$RULES_DIR"/*.yaml "$RULES_DIR"/*.yml "$RULES_DIR"/*.rules)
test_files=("$TESTS_DIR"/*.yaml "$TESTS_DIR"/*.yml)
dashboards=("$DASH_DIR"/*.json)
shopt -u nullglob
[[ ${#rule_files[@]} -gt 0 ]] || die "no rule files in $RULES_DIR"
[[ ${#test_files[@]} -gt 0 ]] || die "no unit-test files in $TESTS_DIR"
[[ ${#dashboards[@]} -gt 0 ]] || die "no dashboards in $DASH_DIR"

# --- rule files -------------------------------------------------------------
for f in "${rule_files[@]}"; do
    check "promtool check rules ${f#"$REPO"/}" "$PROMTOOL" check rules "$f"
done

check "alert lint (for, severity, summary, description, unique, tested)" \
    "$PY" - "$TESTS_DIR" "${rule_files[@]}" <<'PYEOF'
import glob, os, sys, yaml
tests_dir, rule_files = sys.argv[1], sys.argv[2:]
errors, alerts = [], {}
for path in rule_files:
    doc = yaml.safe_load(open(path)) or {}
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert")
            if not name:
                continue
            where = f"{os.path.basename(path)}: {name}"
            if name in alerts:
                errors.append(f"{where}: defined twice")
            alerts[name] = where
            if not rule.get("for"):
                errors.append(f"{where}: no `for`")
            if (rule.get("labels") or {}).get("severity") not in ("critical", "warning"):
                errors.append(f"{where}: severity must be critical or warning")
            ann = rule.get("annotations") or {}
            for key in ("summary", "description"):
                if not str(ann.get(key, "")).strip():
                    errors.append(f"{where}: no annotations.{key}")
fired = set()
for path in glob.glob(os.path.join(tests_dir, "*.y*ml")):
    for group in (yaml.safe_load(open(path)) or {}).get("tests", []):
        for t in group.get("alert_rule_test", []) or []:
            if t.get("exp_alerts"):
                fired.add(t["alertname"])
for name, where in alerts.items():
    if name not in fired:
        errors.append(f"{where}: no unit test shows it firing")
if not alerts:
    errors.append("no alerts defined")
print("\n".join(errors) or f"{len(alerts)} alerts")
sys.exit(1 if errors else 0)
PYEOF

# --- unit tests -------------------------------------------------------------
for f in "${test_files[@]}"; do
    # rule_files in the tests are relative to the test file.
    check "promtool test rules ${f#"$REPO"/}" bash -c 'cd "$(dirname "$1")" && "$2" test rules "$(basename "$1")"' _ "$f" "$PROMTOOL"
done

# --- dashboards -------------------------------------------------------------
# Writes every target expression of every dashboard into one rule file for the
# PromQL syntax check below, and the names of the recording rules and raw
# metrics they use into lists for the later checks.
for f in "${dashboards[@]}"; do
    check "dashboard ${f#"$REPO"/}" "$PY" - "$f" <<'PYEOF'
import json, re, sys
path = sys.argv[1]
errors = []
with open(path) as fh:
    d = json.load(fh)
for key in ("title", "uid"):
    if not d.get(key):
        errors.append(f"no {key}")
if "synapse" not in d.get("tags", []):
    errors.append("tags lack 'synapse'")
if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
    errors.append("schemaVersion missing or older than 36")
variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
ds = variables.get("prometheusds")
if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    errors.append("no datasource variable prometheusds (type datasource, query prometheus)")
for name in ("juju_model", "juju_model_uuid", "juju_application", "juju_unit"):
    v = variables.get(name)
    q = v and v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    if not v or v.get("type") != "query" or not str(q).startswith("label_values("):
        errors.append(f"no label_values query variable {name}")
required = ['juju_model=~"$juju_model"', 'juju_model_uuid=~"$juju_model_uuid"',
            'juju_application=~"$juju_application"', 'juju_unit=~"$juju_unit"']
def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))
ids, exprs = set(), 0
for p in panels(d.get("panels", [])):
    title = p.get("title", "?")
    if p.get("id") in ids:
        errors.append(f"{title}: duplicate panel id {p.get('id')}")
    ids.add(p.get("id"))
    if p.get("type") == "row":
        continue
    if (p.get("datasource") or {}).get("uid") != "${prometheusds}":
        errors.append(f"{title}: panel datasource is not ${{prometheusds}}")
    if not p.get("targets"):
        errors.append(f"{title}: no targets")
    for t in p.get("targets", []):
        expr = t.get("expr", "")
        exprs += 1
        if (t.get("datasource") or {}).get("uid") != "${prometheusds}":
            errors.append(f"{title}: target datasource is not ${{prometheusds}}")
        if "$juju_model" not in expr or "$juju_application" not in expr:
            errors.append(f"{title}: expr does not use $juju_model and $juju_application: {expr}")
        selectors = re.findall(r"\{([^{}]*)\}", expr)
        if not selectors:
            errors.append(f"{title}: expr has no label selector: {expr}")
        for sel in selectors:
            missing = [m for m in required if m not in sel]
            if missing:
                errors.append(f"{title}: selector {{{sel}}} lacks {', '.join(missing)}")
print("\n".join(errors) or f"{d.get('title')}: {exprs} expressions")
sys.exit(1 if errors else 0)
PYEOF
done

check "dashboard uids and titles are unique" "$PY" - "${dashboards[@]}" <<'PYEOF'
import json, sys
uids, titles, errors = {}, {}, []
for path in sys.argv[1:]:
    d = json.load(open(path))
    for key, seen in (("uid", uids), ("title", titles)):
        if d.get(key) in seen:
            errors.append(f"{key} {d.get(key)!r} in {seen[d.get(key)]} and {path}")
        seen[d.get(key)] = path
    if len(d.get("uid", "")) > 40:
        errors.append(f"uid {d.get('uid')!r} longer than 40 characters")
print("\n".join(errors))
sys.exit(1 if errors else 0)
PYEOF

# Extract the dashboard expressions (Grafana's interval variables replaced by
# a fixed range) as recording rules, and every metric name of rules and dashboards.
"$PY" - "$WORK" "${dashboards[@]}" -- "${rule_files[@]}" <<'PYEOF' || die "could not extract expressions"
import json, re, sys, yaml
work = sys.argv[1]
sep = sys.argv.index("--")
dashboards, rule_files = sys.argv[2:sep], sys.argv[sep + 1:]
def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))
exprs = []
for path in dashboards:
    for p in panels(json.load(open(path)).get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                exprs.append(t["expr"])
rules = [{"record": f"dashboard:expr_{i}:check",
          "expr": re.sub(r"\$__(rate_)?interval|\$__range", "5m", e)} for i, e in enumerate(exprs)]
with open(f"{work}/dashboard_exprs.rules.yaml", "w") as fh:
    yaml.safe_dump({"groups": [{"name": "dashboard_exprs", "rules": rules}]}, fh)
recorded, alert_exprs = set(), []
for path in rule_files:
    for g in (yaml.safe_load(open(path)) or {}).get("groups", []):
        for r in g.get("rules", []):
            if r.get("record"):
                recorded.add(r["record"])
            alert_exprs.append(r["expr"])
used_recorded, metrics = set(), set()
for e in exprs + alert_exprs:
    e = re.sub(r'"[^"]*"', '""', e)  # drop label values
    used_recorded.update(re.findall(r"[a-zA-Z_]\w*:\w+:\w+", e))
    metrics.update(re.findall(r"(?<![\w:])((?:synapse|process)_\w+)(?![\w:])", e))
open(f"{work}/recorded", "w").write("\n".join(sorted(recorded)) + "\n")
open(f"{work}/used_recorded", "w").write("\n".join(sorted(used_recorded)) + "\n")
open(f"{work}/metrics", "w").write("\n".join(sorted(metrics)) + "\n")
PYEOF

check "dashboard expressions parse as PromQL" "$PROMTOOL" check rules "$WORK/dashboard_exprs.rules.yaml"

check "recording rules used by dashboards and alerts are defined" \
    bash -c 'missing=$(comm -23 <(sort -u "$1") <(sort -u "$2")); [[ -z $missing ]] || { echo "undefined: $missing"; exit 1; }' \
    _ "$WORK/used_recorded" "$WORK/recorded"

# --- metric names -----------------------------------------------------------
# Synapse registers its metrics at import; the collectors list them even
# before they have samples. Counters are exposed with `_total`, histograms
# with `_bucket`/`_count`/`_sum`.
if [[ -x $SYNAPSE_PY ]] && "$SYNAPSE_PY" -c 'import synapse' 2>/dev/null; then
    check "metric names exist in Synapse $("$SYNAPSE_PY" -c 'import synapse; print(synapse.__version__)' 2>/dev/null) or the stats exporter" \
        "$SYNAPSE_PY" - "$WORK/metrics" "$EXPORTER_SRC" <<'PYEOF'
import re, sys, warnings
warnings.simplefilter("ignore")
import synapse.app.homeserver  # noqa: F401  (imports the server, registering its metrics)
import synapse.federation.sender  # noqa: F401
from prometheus_client import REGISTRY
names = set()
for fam in REGISTRY.collect():
    names.add(fam.name)
    if fam.type == "counter":
        names.add(fam.name + "_total")
    elif fam.type == "histogram":
        names.update(fam.name + s for s in ("_bucket", "_count", "_sum"))
    names.update(s.name for s in fam.samples)
try:
    exporter = set(re.findall(r'"((?:synapse)_\w+)"', open(sys.argv[2]).read()))
except OSError:
    exporter = set()
used = [m for m in open(sys.argv[1]).read().split() if m]
# Job names in `up{job=~"..."}` are not metrics; they were dropped with the
# label values, so everything left is a metric name.
unknown = [m for m in used if m not in names and m not in exporter]
print("\n".join(f"unknown metric: {m}" for m in unknown) or f"{len(used)} metric names found")
sys.exit(1 if unknown else 0)
PYEOF
else
    echo "skip - metric names (no Synapse venv at $SYNAPSE_PY)"
fi

echo "prometheus rules: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
