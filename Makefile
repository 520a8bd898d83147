# make is the front door: make demo, make test, make bench, make lint.
GO ?= go
BIN := bin/cygni-usage

.PHONY: build demo test bench lint clean

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

lint:
	gofmt -l . | (! grep .)
	$(GO) vet ./...

clean:
	rm -rf bin
