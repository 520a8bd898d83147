package config

import (
	"testing"
	"time"
)

// TestStorageConfigFiles loads testdata/storage*.yml: the good file selects remote mode, each
// bad one fails naming the key and what it takes.
func TestStorageConfigFiles(t *testing.T) {
	for _, tc := range []struct {
		file, wantErr string
	}{
		{"storage.good.yml", ""},
		{"storage-mode.bad.yml", `'storage.mode' is "cluster"; want embedded or remote`},
		{"storage-kind.bad.yml", `'storage.remote.kind' is "thanos"; want victoriametrics or prometheus`},
		{"storage-read.bad.yml", `'storage.remote.read_url' is empty; remote mode needs an http(s) URL such as http://prometheus:9090/api/v1/read`},
		{"storage-url.bad.yml", `'storage.remote.write_url' is "victoria:8428/api/v1/write"; want an http(s) URL such as http://victoria:8428/api/v1/write`},
		{"storage-unknown-key.bad.yml", `unknown key storage.remote.writeurl (did you mean storage.remote.write_url?)`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c := parseTestdata(t, tc.file, tc.wantErr)
			if c == nil {
				return
			}
			want := StorageConfig{Mode: "remote", Remote: RemoteStorageConfig{
				Kind: "victoriametrics", WriteURL: "http://127.0.0.1:8428/api/v1/write", ReadURL: "http://127.0.0.1:8428",
				Timeout: Duration(10 * time.Second),
			}}
			if c.Storage != want {
				t.Errorf("storage = %+v, want %+v", c.Storage, want)
			}
		})
	}
	if d := Default().Storage; d.Mode != "embedded" {
		t.Errorf("default storage mode = %q, want embedded", d.Mode)
	}
}
