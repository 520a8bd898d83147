package plugin_test

import (
	"debug/elf"
	"runtime"
	"testing"
)

// TestPluginBinaryIsStatic: Grafana's default image is Alpine (musl), so a backend linked
// against glibc does not start there. The binary `make plugin` builds (CGO_ENABLED=0) asks for
// no dynamic loader and no shared library.
func TestPluginBinaryIsStatic(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ELF check: linux only")
	}
	f, err := elf.Open(pluginBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the plugin binary has a %s program header: it is dynamically linked", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the plugin binary needs shared libraries %v (%v)", libs, err)
	}
}
