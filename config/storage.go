package config

import (
	"fmt"
	"net/url"
)

// StorageConfig chooses where the usage series live: the embedded TSDB in data_dir (one
// machine), or a remote Prometheus-compatible store that several processes share.
type StorageConfig struct {
	// Mode is embedded (default) or remote.
	Mode string `yaml:"mode"`
	// Remote configures the remote store; used when Mode is remote.
	Remote RemoteStorageConfig `yaml:"remote"`
}

// RemoteStorageConfig is a remote store: written by Prometheus remote-write through a durable
// queue in data_dir/remote-queue, read by its own API.
type RemoteStorageConfig struct {
	// Kind is victoriametrics or prometheus (any store that serves Prometheus remote read:
	// Prometheus, Thanos, Mimir, Cortex).
	Kind string `yaml:"kind"`
	// WriteURL is the remote-write endpoint, e.g. http://victoria:8428/api/v1/write or
	// http://prometheus:9090/api/v1/write.
	WriteURL string `yaml:"write_url"`
	// ReadURL is, for prometheus, the remote-read endpoint (http://prometheus:9090/api/v1/read);
	// for victoriametrics, the base of its query API (http://victoria:8428, or vmselect's
	// http://vmselect:8481/select/0/prometheus).
	ReadURL string `yaml:"read_url"`
	// Timeout bounds one request to the store (default 30s).
	Timeout Duration `yaml:"timeout"`
}

func (c *StorageConfig) setDefaults() {
	c.Mode = "embedded"
	c.Remote.Timeout = Duration(30e9)
}

func (c *StorageConfig) validate() error {
	switch c.Mode {
	case "embedded":
		return nil
	case "remote":
	default:
		return fmt.Errorf("'storage.mode' is %q; want embedded or remote", c.Mode)
	}
	r := c.Remote
	switch r.Kind {
	case "victoriametrics", "prometheus":
	case "":
		return fmt.Errorf("'storage.remote.kind' is empty; remote mode needs victoriametrics or prometheus")
	default:
		return fmt.Errorf("'storage.remote.kind' is %q; want victoriametrics or prometheus", r.Kind)
	}
	egWrite, egRead := "http://victoria:8428/api/v1/write", "http://victoria:8428"
	if r.Kind == "prometheus" {
		egWrite, egRead = "http://prometheus:9090/api/v1/write", "http://prometheus:9090/api/v1/read"
	}
	for _, u := range []struct{ key, val, eg string }{
		{"write_url", r.WriteURL, egWrite},
		{"read_url", r.ReadURL, egRead},
	} {
		if u.val == "" {
			return fmt.Errorf("'storage.remote.%s' is empty; remote mode needs an http(s) URL such as %s", u.key, u.eg)
		}
		if p, err := url.Parse(u.val); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("'storage.remote.%s' is %q; want an http(s) URL such as %s", u.key, u.val, u.eg)
		}
	}
	return positive("storage.remote.timeout", r.Timeout)
}
