package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/config"
)

// apiLimits maps the configuration's limits: and http: sections to the API's limits.
func apiLimits(c *config.Config) api.Limits {
	q, r := c.Limits.Query, c.Limits.REST
	noQueue := func(n int) int { // 0 in the file: no queue; in api.Limits: the default
		if n == 0 {
			return -1
		}
		return n
	}
	return api.Limits{
		RequestBodyBytes:         c.Limits.RequestBodyBytes,
		QueryTimeout:             q.Timeout.D(),
		MaxSamples:               q.MaxSamples,
		MaxSeries:                q.MaxSeries,
		MaxQueryLength:           q.MaxQueryLength,
		MaxNestingDepth:          q.MaxNestingDepth,
		MinStep:                  q.MinStep.D(),
		MaxPoints:                q.MaxPoints,
		MinSubqueryStep:          q.MinSubqueryStep.D(),
		MaxSubqueryPoints:        q.MaxSubqueryPoints,
		MaxResponseBytes:         q.MaxResponseBytes,
		MaxConcurrentPerTeam:     q.MaxConcurrentPerTeam,
		MaxQueuedPerTeam:         noQueue(q.MaxQueuedPerTeam),
		QueueTimeout:             q.QueueTimeout.D(),
		RESTTimeout:              r.Timeout.D(),
		RESTMaxConcurrentPerTeam: r.MaxConcurrentPerTeam,
		RESTMaxQueuedPerTeam:     noQueue(r.MaxQueuedPerTeam),
		RESTQueueTimeout:         r.QueueTimeout.D(),
		CORSAllowedOrigins:       c.HTTP.CORSAllowedOrigins,
	}
}

// promRuleDirs are the directories /api/v1/rules shows rule files relative to: the shipped
// rules' and, for each rule_files glob, the directory before its first wildcard.
func promRuleDirs(shipped string, globs []string) []string {
	dirs := []string{shipped}
	for _, g := range globs {
		static := g
		if i := strings.IndexAny(g, "*?["); i >= 0 {
			static = g[:i]
		}
		dirs = append(dirs, filepath.Dir(static))
	}
	return dirs
}

// privateDir creates the data directory with mode 0700, or narrows an existing one to it: it
// holds the store (tokens' hashes, customers' names) and the usage data.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("make the data directory %s private: %w", dir, err)
		}
	}
	return nil
}

// newHTTPServer is the API's server with the configuration's timeouts (limits.http).
func newHTTPServer(c *config.Config, h http.Handler) *http.Server {
	hl := c.Limits.HTTP
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: hl.ReadHeaderTimeout.D(),
		ReadTimeout:       hl.ReadTimeout.D(),
		WriteTimeout:      hl.WriteTimeout.D(),
		IdleTimeout:       hl.IdleTimeout.D(),
	}
}
