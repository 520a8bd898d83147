#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs and starts what the tests need, then runs
# every test. `make test` and .ci/run call this.
#
# Every step runs even when an earlier one failed; the script exits non-zero at the end with a
# one-line summary of the steps that failed. No test reads the wall clock: the suite runs at a
# fixed default instant, and the end-to-end package again at pinned instants (CYGNI_TEST_NOW)
# in the simulated night, across a month boundary and on a DST change day.
set -uo pipefail
cd "$(dirname "$0")/.."

export PATH="$(go env GOPATH)/bin:$PATH"
log() { printf '==> %s\n' "$*"; }

failed=()
# step NAME CMD...: runs CMD, records NAME when it fails, and carries on.
step() {
  local name=$1
  shift
  log "$name"
  local t0=$SECONDS
  if "$@"; then
    log "$name: ok ($((SECONDS - t0)) s)"
  else
    log "$name: FAILED ($((SECONDS - t0)) s)"
    failed+=("$name")
  fi
}

# stripe-mock: the real Stripe API mock, for the billing tests' request shapes.
install_stripe_mock() {
  command -v stripe-mock >/dev/null 2>&1 && return 0
  log "installing stripe-mock"
  go install github.com/stripe/stripe-mock@v0.203.0
}

# promtool: checks and unit-tests the shipped rule files and queries our Prometheus API.
install_promtool() {
  command -v promtool >/dev/null 2>&1 && return 0
  log "installing promtool (one-time build, a few minutes)"
  # remove_all_sd leaves out the service-discovery plugins (Kubernetes, cloud SDKs) promtool does not need here.
  go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@v0.316.0
}

# PostgreSQL on 127.0.0.1:5432 (trust auth) with a database `test`: the store's second backend.
start_postgres() {
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    log "starting PostgreSQL"
    if command -v pg_ctlcluster >/dev/null 2>&1; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break; sleep 1; done
  fi
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    log "PostgreSQL does not answer on 127.0.0.1:5432 (the PostgreSQL tests fail under CI=true)"
    return 1
  fi
  if [ -z "${CYGNI_TEST_POSTGRES_DSN:-}" ]; then
    # The server answers; make sure the database the tests use exists.
    if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
      log "creating the PostgreSQL database test"
      psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test' || return 1
    fi
    export CYGNI_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
  fi
}

# The Grafana plugin's frontend: typecheck, lint and jest.
plugin_frontend() {
  [ -f grafana-plugin/package.json ] || return 0
  (cd grafana-plugin && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run typecheck && npm run lint && npm run test:ci)
}

# ---- web console (issue #16): the committed bundle and the browser tests -------------------
# Debian's chromium driven by playwright-core (pinned by web/package-lock.json). The tests build
# and start the real binary (demo, at the suite's pinned instant), sign in with a demo token and
# check what the page shows against the API; `npm run check` fails when web/dist is not what
# web/src builds to.
install_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  log "installing chromium (Debian package)"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}
web_console() {
  (cd web && npm ci --no-audit --no-fund && npm run check && npm test)
}
# ---- end of the web console block -----------------------------------------------------------

# ---- remote series stores (issue #14): the real VictoriaMetrics single-node and Prometheus
# server that internal/storetest starts for the remote-mode tests (tsdb/, e2e), and vmalert,
# which checks that the shipped rule files load unchanged. Under CI=true a missing binary fails
# those tests instead of skipping them. Prometheus is built without the
# service-discovery plugins, as promtool is, to keep the one-time build short.
install_victoriametrics() {
  command -v victoria-metrics >/dev/null 2>&1 && return 0
  log "installing victoria-metrics (one-time build)"
  go install github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@v1.151.0
}
install_vmalert() {
  command -v vmalert >/dev/null 2>&1 && return 0
  log "installing vmalert (same module as victoria-metrics)"
  go install github.com/VictoriaMetrics/VictoriaMetrics/app/vmalert@v1.151.0
}
install_prometheus() {
  command -v prometheus >/dev/null 2>&1 && return 0
  log "installing prometheus (one-time build, a few minutes)"
  go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/prometheus@v0.316.0
}
step "install victoria-metrics" install_victoriametrics
step "install vmalert" install_vmalert
step "install prometheus" install_prometheus
# ---- end of the remote series stores block

step "install stripe-mock" install_stripe_mock
step "install promtool" install_promtool
step "PostgreSQL" start_postgres
step "grafana-plugin frontend" plugin_frontend
step "go vet" go vet ./...
# Every package at the suite's default instant (clocktest.Default; CYGNI_TEST_NOW overrides it).
step "go test" go test -count=1 -timeout 20m ./...
# The race detector over the packages that run goroutines of their own.
step "go test -race" go test -race -count=1 -timeout 20m ./collector/ ./alerting/ ./billing/ ./store/ ./simaws/
# ---- fuzzing (issue #13): each target for a bounded number of executions (about 10 s each on
# these machines; ~85,000 in all). Counts, not durations: a duration-based -fuzztime can end a
# clean run with a spurious "context deadline exceeded" (golang/go#75804, a race in Go's fuzz
# coordinator, fixed in go1.27, not in any 1.26.x). CYGNI_FUZZTIME (e.g. 30s or 100000x)
# overrides every target's budget. The first run also builds the instrumented test binaries. The
# committed seeds in <pkg>/testdata/fuzz/<target>/ also run as plain tests in "go test" above.
# Minimising a new input is capped at 1s: the default (60s) would take the whole budget.
fuzz_targets() {
  local rc=0
  for target in ./api/:FuzzPromAPI:4000x ./api/:FuzzRESTParams:8000x ./api/:FuzzRESTPostBodies:10000x \
    ./config/:FuzzConfigParse:60000x ./alerting/:FuzzRuleFile:1500x; do
    local pkg=${target%%:*} rest=${target#*:}
    local name=${rest%%:*} budget=${CYGNI_FUZZTIME:-${rest#*:}}
    go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$budget" -fuzzminimizetime 1s || rc=1
  done
  return $rc
}
step "go test -fuzz" fuzz_targets
# ---- end of the fuzzing block
step "install chromium" install_chromium
step "web console" web_console
# ---- The Go modules beside the service's: the Grafana plugin's backend (grafana-plugin/) and the
# docker-compose checks (deploy/) are modules of their own, so that the service's module carries
# neither the plugin SDK nor compose-go; `go vet ./...` and `go test ./...` above do not enter
# them. Every module's go.mod must be what `go mod tidy` makes of it.
for mod in . grafana-plugin deploy; do
  step "go mod tidy ($mod)" bash -c "cd $mod && go mod tidy -diff"
done
for mod in grafana-plugin deploy; do
  step "go vet ($mod)" bash -c "cd $mod && go vet ./..."
  step "go test ($mod)" bash -c "cd $mod && go test -count=1 -timeout 20m ./..."
done
# ---- end of the plugin and deploy modules

# ---- The simulated year of issue #12 at full size (100 projects × 365 days through simaws, the
# collector, the TSDB, billing and the recording Stripe server): hours of CPU on these machines
# (docs/billing.md), so only when asked with CYGNI_CI_YEAR_FULL=1. "go test" above runs the
# always-on variant (2 projects × 75 days).
if [ "${CYGNI_CI_YEAR_FULL:-}" = "1" ]; then
  step "billing: the simulated year, full size" env CYGNI_TEST_YEAR_FULL=1 go test -count=1 -timeout 8h -run '^TestYearExactToTheUnit$' -v ./billing/
fi
# ---- end of the simulated year block

# The end-to-end package again at pinned instants: in the simulated night, right after a month
# boundary, and on a DST change day (Europe, 2026-03-29). Only in CI or when asked, to keep a
# developer's run short.
if [ "${CI:-}" = "true" ] || [ -n "${CYGNI_TEST_INSTANTS:-}" ]; then
  for at in ${CYGNI_TEST_INSTANTS:-2026-11-19T02:30:00Z 2026-12-01T00:20:00Z 2026-03-29T01:30:00Z}; do
    step "e2e at $at" env CYGNI_TEST_NOW="$at" go test -count=1 -timeout 20m ./e2e/
  done
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf '==> FAILED (%d): %s\n' "${#failed[@]}" "$(IFS=,; echo "${failed[*]}" | sed 's/,/, /g')"
  exit 1
fi
log "all steps passed"
