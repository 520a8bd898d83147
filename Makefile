# make is the front door: make demo, make test, make bench, make lint.
GO ?= go
BIN := bin/cygni-usage

# The Grafana plugin: its id, version (package.json) and the platforms its backend is built for.
PLUGIN_ID := cygni-usage-datasource
PLUGIN_VERSION := $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' grafana-plugin/package.json)
PLUGIN_PLATFORMS := linux/amd64 linux/arm64 darwin/arm64 windows/amd64

.PHONY: build demo test bench bench-month lint clean plugin

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/cygni-usage

demo: build
	./$(BIN) demo

# The whole suite: installs stripe-mock and promtool, starts PostgreSQL, runs every test.
test:
	bash scripts/test.sh

# Benchmarks; figures go to docs/benchmarks.md with the machine noted.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The "Month of 1,000 projects" benchmarks through HTTP (docs/benchmarks.md). The first run builds
# the ~625 M-sample fixture through the collector into $$CYGNI_BENCH_FIXTURE_DIR (default under
# the system's temp dir) and later runs reuse it.
bench-month:
	$(GO) test -run '^$$' -bench BenchmarkMonth -benchtime 20x -timeout 3h ./api/

lint:
	gofmt -l . | (! grep .)
	$(GO) vet ./...

# The Grafana plugin, complete: the frontend, plugin.json, logo, README and a static backend
# (CGO_ENABLED=0, so it also starts in Grafana's Alpine image) per platform, named as Grafana looks
# for them (gpx_usage_<os>_<arch>, .exe on Windows), into grafana-plugin/dist/; then the zip
# Grafana's plugin loader and `grafana cli --pluginUrl` install, whose top folder is the plugin id:
# grafana-plugin/build/$(PLUGIN_ID)-$(PLUGIN_VERSION).zip.
plugin:
	cd grafana-plugin && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build
	for p in $(PLUGIN_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "gpx_usage_$${os}_$${arch}$$ext"; \
	  (cd grafana-plugin && CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags='-s -w' \
	    -o dist/gpx_usage_$${os}_$${arch}$$ext ./cmd/gpx_usage) || exit 1; \
	done
	rm -rf grafana-plugin/build && mkdir -p grafana-plugin/build/$(PLUGIN_ID)
	cp -R grafana-plugin/dist/. grafana-plugin/build/$(PLUGIN_ID)/
	cd grafana-plugin/build && zip -qr $(PLUGIN_ID)-$(PLUGIN_VERSION).zip $(PLUGIN_ID) && rm -rf $(PLUGIN_ID)
	@echo "grafana-plugin/dist/ and grafana-plugin/build/$(PLUGIN_ID)-$(PLUGIN_VERSION).zip"

clean:
	rm -rf bin grafana-plugin/dist grafana-plugin/build
