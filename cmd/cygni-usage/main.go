// Command cygni-usage runs Cygni's usage tracking: collection from CloudWatch into the embedded
// TSDB, the usage and Prometheus APIs, budget alerting and billing. main only wires: flags →
// config → constructors → run group → signals.
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/alecthomas/kingpin/v2"
)

// version may be set at build time with -ldflags "-X main.version=v1.2.3"; otherwise the
// module version of the build (v1.2.3 from `go install …@v1.2.3`, "(devel)" from a checkout).
var version = ""

// versionString is what --version prints: the version, the VCS revision and time the binary was
// built from (with -dirty for uncommitted changes), and the Go version.
func versionString() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if v == "" {
			v = "(unknown)"
		}
		return "cygni-usage " + v
	}
	if v == "" {
		v = bi.Main.Version
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	out := "cygni-usage " + v
	if rev != "" {
		rev = rev[:min(12, len(rev))]
		if dirty {
			rev += "-dirty"
		}
		out += " (revision " + rev
		if at != "" {
			out += ", " + at
		}
		out += ")"
	}
	return out + ", " + bi.GoVersion
}

// command is one subcommand: its flags are registered on the clause, and run is called when
// the clause was chosen.
type command interface {
	run(g *globals) error
}

// globals are the flags every command shares.
type globals struct {
	configFile string
	dataDir    string
	listen     string
}

func main() {
	app := kingpin.New("cygni-usage", "Usage tracking for Cygni: CloudWatch → Prometheus TSDB → usage API, budget alerts and Stripe billing.")
	app.Version(versionString())
	app.HelpFlag.Short('h')
	g := &globals{}
	app.Flag("config", "YAML configuration file (see cygni-usage.example.yml).").Short('c').StringVar(&g.configFile)
	app.Flag("data-dir", "Directory for the TSDB, the SQLite store and the collector's watermark (overrides data_dir).").StringVar(&g.dataDir)
	app.Flag("listen", "HTTP listen address (overrides listen).").StringVar(&g.listen)

	cmds := map[string]command{}
	for _, reg := range commands {
		name, cmd := reg(app)
		cmds[name] = cmd
	}
	chosen, err := app.Parse(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "cygni-usage: %v\n", err)
		os.Exit(2)
	}
	cmd, ok := cmds[chosen]
	if !ok {
		fmt.Fprintf(os.Stderr, "cygni-usage: unknown command %q\n", chosen)
		os.Exit(2)
	}
	if err := cmd.run(g); err != nil {
		fmt.Fprintf(os.Stderr, "cygni-usage %s: %v\n", chosen, err)
		os.Exit(1)
	}
}

// commands registers every subcommand; each file adds its own with an init-free list entry.
var commands = []func(app *kingpin.Application) (string, command){
	registerServe,
	registerDemo,
	registerSimAWS,
	registerCheckConfig,
	registerBillingReconcile,
	registerBillingSubscriptionItem,
	registerTeamCreate,
	registerTeamList,
	registerTeamSetStripeCustomer,
	registerMemberAdd,
	registerMemberRemove,
	registerProjectCreate,
	registerProjectList,
	registerProjectMove,
	registerTokenCreate,
	registerTokenRevoke,
	registerTokenList,
	registerThresholdsShow,
	registerThresholdsSet,
	registerPricesShow,
	registerPricesSet,
	registerPricesClear,
	registerPricesCheckStripe,
	registerAuditList,
	registerTeamSetBudget,
	registerTeamSetTimeZone,
	registerProjectSetDailyBudget,
	registerUnmapped,
	registerCheckRules,
	registerCollect,
	registerDerive,
}
