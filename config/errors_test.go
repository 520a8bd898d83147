package config

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Every decoding error names the key's path and what the key takes, never a Go type; Load puts
// the file and line in front.
func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		file, want string
		line       int
	}{
		{"collector-five.bad.yml", `collector.interval: "five" is not a duration (e.g. "90s", "5m", "400d")`, 2},
		{"collector-list.bad.yml", `collector.concurrency: want an integer, got a list`, 2},
		{"collector-unknown-key.bad.yml", `unknown key collector.intervall (did you mean collector.interval?)`, 3},
		{"top-unknown.bad.yml", `unknown key lisen (did you mean listen?)`, 2},
		{"billing-bool.bad.yml", `billing.meters.cpu.disabled: want true or false, got "maybe"`, 5},
		{"syntax.bad.yml", `not valid YAML: did not find expected key`, 2},
		{"listen-noport.bad.yml", `'listen' is "nothere"; want host:port, such as 127.0.0.1:8080 or :8080`, 0},
		{"listen-port.bad.yml", `'listen' is "127.0.0.1:99999"; the port must be a number from 0 to 65535`, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			parseTestdata(t, tc.file, tc.want)
			path := filepath.Join("testdata", tc.file)
			_, err := Load(path)
			prefix := path + ": "
			if tc.line > 0 {
				prefix = path + ":" + strconv.Itoa(tc.line) + ": "
			}
			if err == nil || err.Error() != prefix+tc.want {
				t.Errorf("Load = %v, want %q", err, prefix+tc.want)
			}
			for _, bad := range []string{"config.", "!!", "unmarshal", "yaml:"} {
				if err != nil && strings.Contains(err.Error(), bad) {
					t.Errorf("the error shows %q: %v", bad, err)
				}
			}
		})
	}
	c := parseTestdata(t, "listen.good.yml", "")
	if c.Listen != "[::1]:8080" || c.DataDir != "/var/lib/cygni" {
		t.Errorf("listen.good.yml = %q %q", c.Listen, c.DataDir)
	}
}

// Listen addresses: host:port with a port of 0..65535 and a host that is empty, an IP or a name.
func TestListenValidation(t *testing.T) {
	for _, tc := range []struct {
		listen string
		ok     bool
	}{
		{"127.0.0.1:8080", true}, {":8080", true}, {"localhost:80", true}, {"[::1]:8080", true}, {"127.0.0.1:0", true},
		{"nothere", false}, {"127.0.0.1:99999", false}, {"127.0.0.1:-1", false}, {"127.0.0.1:http", false},
		{"bad host:80", false}, {"127.0.0.1:", false}, {"", false},
	} {
		c := Default()
		c.Listen = tc.listen
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("listen %q: err = %v, want ok=%v", tc.listen, err, tc.ok)
		}
	}
}
