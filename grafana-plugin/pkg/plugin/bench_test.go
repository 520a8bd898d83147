package plugin_test

import (
	"testing"
	"time"
)

// BenchmarkQueryData times dashboard queries as Grafana sends them, over gRPC to the built
// plugin and on to a running cygni-usage over HTTP (the time is the whole round trip):
//
//	cd grafana-plugin && go test -run '^$' -bench BenchmarkQueryData -benchtime 20x ./pkg/plugin/
func BenchmarkQueryData(b *testing.B) {
	svc := startService(b)
	plug := startPlugin(b)
	pc := pluginContext(svc.url, svc.tokenA)
	to := svc.to.Truncate(time.Hour)
	for _, bc := range []struct {
		name string
		r    request
		q    map[string]any
	}{
		{"usage 7d hourly, all projects", request{from: to.Add(-7 * 24 * time.Hour), to: to, interval: 10 * time.Minute}, map[string]any{"queryType": "usage", "metric": "cost.total", "project": "$__all"}},
		{"usage 90d auto (daily), all projects", request{from: to.Add(-90 * 24 * time.Hour), to: to, interval: 2 * time.Hour}, map[string]any{"queryType": "usage", "metric": "cost.total", "project": "$__all"}},
		{"budget table", request{from: to.Add(-time.Hour), to: to}, map[string]any{"queryType": "budget", "project": "$__all"}},
		{"promql 7d step 1h", request{from: to.Add(-7 * 24 * time.Hour), to: to, interval: time.Hour}, map[string]any{"queryType": "promql", "expr": `sum by (project) (sum_over_time(cygni_cpu_seconds:sum1h{project=~".*"}[1h]))`}},
		{"notifications 7d", request{from: to.Add(-7 * 24 * time.Hour), to: to.Add(24 * time.Hour)}, map[string]any{"queryType": "notifications", "project": "$__all"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res := plug.query(b, pc, bc.r, bc.q); res.Error != nil {
					b.Fatal(res.Error)
				}
			}
		})
	}
}
