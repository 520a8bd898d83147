package main

import (
	"github.com/cygni/usage/api"
	"github.com/cygni/usage/config"
)

// apiLimits maps the configuration's limits: and http: sections to the API's limits.
func apiLimits(c *config.Config) api.Limits {
	q, r := c.Limits.Query, c.Limits.REST
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
		MaxQueuedPerTeam:         q.MaxQueuedPerTeam,
		QueueTimeout:             q.QueueTimeout.D(),
		RESTTimeout:              r.Timeout.D(),
		RESTMaxConcurrentPerTeam: r.MaxConcurrentPerTeam,
		RESTMaxQueuedPerTeam:     r.MaxQueuedPerTeam,
		RESTQueueTimeout:         r.QueueTimeout.D(),
		CORSAllowedOrigins:       c.HTTP.CORSAllowedOrigins,
	}
}
