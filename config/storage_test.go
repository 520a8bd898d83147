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

// collector.shard is i/n with 0 <= i < n.
func TestCollectorShard(t *testing.T) {
	for _, tc := range []struct {
		shard string
		i, n  int
		ok    bool
	}{
		{"", 0, 1, true}, {"0/2", 0, 2, true}, {"1/2", 1, 2, true}, {"2/3", 2, 3, true},
		{"2/2", 0, 0, false}, {"-1/2", 0, 0, false}, {"1", 0, 0, false}, {"a/b", 0, 0, false}, {"0/0", 0, 0, false},
	} {
		c := Default()
		c.Collector.Shard = tc.shard
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("shard %q: err = %v, want ok=%v", tc.shard, err, tc.ok)
			continue
		}
		if err != nil {
			if want := `'collector.shard' is "` + tc.shard + `"; want i/n with 0 <= i < n, such as 0/2`; err.Error() != want {
				t.Errorf("shard %q: %v, want %q", tc.shard, err, want)
			}
			continue
		}
		if i, n := c.Collector.ShardOf(); i != tc.i || n != tc.n {
			t.Errorf("shard %q = %d/%d", tc.shard, i, n)
		}
	}
}
