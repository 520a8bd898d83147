package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfigParse loads arbitrary configuration files: no panic; a refusal names a key
// (KeyError), the syntax (SyntaxError) or a validated key ('key' ...); an accepted file
// validates again. Seeds: the example file, testdata/*.yml and testdata/fuzz/FuzzConfigParse/.
func FuzzConfigParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yml"))
	files = append(files, filepath.Join("..", "cygni-usage.example.yml"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var ke *KeyError
			var se *SyntaxError
			if msg := err.Error(); msg == "" || !errors.As(err, &ke) && !errors.As(err, &se) && !strings.Contains(msg, "'") {
				t.Fatalf("error %q (%T) names no key", msg, err)
			}
			if ke != nil && ke.Key == "" {
				t.Fatalf("KeyError without a key: %v", ke)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted, then invalid: %v", err)
		}
	})
}
