#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs and starts what the tests need, then runs
# every test. `make test` and .ci/run call this.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$(go env GOPATH)/bin:$PATH"
log() { printf '==> %s\n' "$*"; }

# stripe-mock: the real Stripe API mock, for the billing tests' request shapes.
if ! command -v stripe-mock >/dev/null 2>&1; then
  log "installing stripe-mock"
  go install github.com/stripe/stripe-mock@v0.203.0
fi

# promtool: checks and unit-tests the shipped rule files and queries our Prometheus API.
if ! command -v promtool >/dev/null 2>&1; then
  log "installing promtool (one-time build, a few minutes)"
  # remove_all_sd leaves out the service-discovery plugins (Kubernetes, cloud SDKs) promtool does not need here.
  go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@v0.316.0
fi

# PostgreSQL on 127.0.0.1:5432 (trust auth, database test): the store's second backend.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break; sleep 1; done
fi
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  export CYGNI_TEST_POSTGRES_DSN="${CYGNI_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
else
  log "PostgreSQL is not reachable on 127.0.0.1:5432 (the PostgreSQL tests fail under CI=true)"
fi

# The Grafana plugin's frontend: typecheck, lint and jest.
if [ -f grafana-plugin/package.json ]; then
  log "grafana-plugin frontend"
  (cd grafana-plugin && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run typecheck && npm run lint && npm run test:ci)
fi

log "go vet"
go vet ./...
log "go test"
go test -count=1 -timeout 20m ./...
# The race detector over the packages that run goroutines of their own.
log "go test -race"
go test -race -count=1 -timeout 20m ./collector/ ./alerting/ ./billing/ ./store/ ./simaws/
