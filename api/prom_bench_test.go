package api_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// BenchmarkPromQuery measures one team-scoped PromQL request through the whole HTTP stack
// (auth, project lookup, scoped TSDB selects, JSON), over 2 h of 1-minute samples of 3 projects.
//
//	go test -run '^$' -bench BenchmarkProm -benchmem ./api/
func BenchmarkPromQuery(b *testing.B) {
	f := newPromFixture(b)
	end := f.from.Add(time.Duration(f.hours*60-1) * time.Minute)
	cases := []struct {
		name, path string
		params     url.Values
	}{
		{"instant sum_over_time 2h", "/api/v1/query", url.Values{
			"query": {`sum by (project) (sum_over_time(cygni_cpu_seconds[2h]))`}, "time": {end.Format(time.RFC3339)}}},
		{"range 1m step 2h", "/api/v1/query_range", url.Values{
			"query": {`sum by (project) (cygni_requests)`}, "start": {f.from.Format(time.RFC3339)}, "end": {end.Format(time.RFC3339)}, "step": {"60"}}},
		{"series all", "/api/v1/series", url.Values{"match[]": {`{__name__=~".+"}`}}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			body := tc.params.Encode()
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, f.url+tc.path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", "Bearer tok-a")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
}
