package collector

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// watermarkFile is the JSON document of the watermark file.
type watermarkFile struct {
	// Watermark is the end of the last chunk whose samples are all committed.
	Watermark time.Time `json:"watermark"`
	// RightSizing is the same for the right-sizing metrics (CpuUtilized, MemoryUtilized), read
	// at their own cadence; absent in files written before that cadence existed.
	RightSizing time.Time `json:"right_sizing,omitzero"`
}

// ReadWatermark returns the watermark of the billed metrics a collector persisted in dataDir
// (every period before it is committed to the TSDB), and false when there is none yet: for the
// parts that run without the collector in their process (billing's CollectedUntil).
func ReadWatermark(dataDir string) (time.Time, bool, error) {
	w, err := readWatermark(filepath.Join(dataDir, WatermarkFile))
	if err != nil || w.Watermark.IsZero() {
		return time.Time{}, false, err
	}
	return w.Watermark, true, nil
}

// readWatermark returns the persisted watermarks; zero times when there are none.
func readWatermark(path string) (watermarkFile, error) {
	var w watermarkFile
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return w, nil
	}
	if err != nil {
		return w, fmt.Errorf("read watermark: %w", err)
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return w, fmt.Errorf("parse watermark %s: %w", path, err)
	}
	w.Watermark, w.RightSizing = w.Watermark.UTC(), w.RightSizing.UTC()
	return w, nil
}

// writeWatermark replaces the watermark file atomically: a temporary file is written and
// synced, renamed over the old one, and the directory synced.
func writeWatermark(path string, w watermarkFile) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create watermark directory: %w", err)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encode watermark: %w", err)
	}
	f, err := os.CreateTemp(dir, ".watermark-*.tmp")
	if err != nil {
		return fmt.Errorf("create watermark file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write watermark: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync watermark: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close watermark: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace watermark: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
