// Command gpx_usage is the backend of the Cygni usage Grafana data source. Grafana starts it
// (as dist/gpx_usage_<os>_<arch>) and talks to it over gRPC; it talks to cygni-usage over HTTP.
//
// Build it static (CGO_ENABLED=0) so that it runs on any Grafana host, the musl-based
// grafana/grafana image included; the time-zone database is embedded for hosts without one.
package main

import (
	"os"
	_ "time/tzdata" // IANA zones for the tz of usage queries on hosts without zoneinfo (Windows, scratch images)

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/cygni/usage/grafana-plugin/pkg/plugin"
)

func main() {
	if err := datasource.Manage(plugin.ID, plugin.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("serve the data source", "err", err)
		os.Exit(1)
	}
}
