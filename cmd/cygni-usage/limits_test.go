package main

import (
	"reflect"
	"testing"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/config"
)

// The configuration's default limits are the API's defaults, and a 0 queue in the file means
// no queue.
func TestAPILimitsFromConfig(t *testing.T) {
	c := config.Default()
	got := apiLimits(c)
	want := api.DefaultLimits()
	// 0 (cores-based) in the file takes the API's computed default.
	if c.Limits.Query.MaxConcurrentPerTeam != 0 || c.Limits.REST.MaxConcurrentPerTeam != 0 {
		t.Fatalf("config defaults %+v", c.Limits)
	}
	got.MaxConcurrentPerTeam, got.RESTMaxConcurrentPerTeam = want.MaxConcurrentPerTeam, want.RESTMaxConcurrentPerTeam
	if !reflect.DeepEqual(got, want) {
		t.Errorf("apiLimits(config.Default()) = %+v\nwant api.DefaultLimits() = %+v", got, want)
	}
	c.Limits.Query.MaxQueuedPerTeam = 0
	if q := apiLimits(c).MaxQueuedPerTeam; q >= 0 {
		t.Errorf("max_queued_per_team: 0 maps to %d, want a negative (no queue)", q)
	}
}

func TestPromRuleDirs(t *testing.T) {
	got := promRuleDirs("/data/rules/shipped", []string{"/etc/cygni/rules/*.yml", "team/a.yml", "x/**/[ab].yml"})
	want := []string{"/data/rules/shipped", "/etc/cygni/rules", "team", "x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("promRuleDirs = %q, want %q", got, want)
	}
}
