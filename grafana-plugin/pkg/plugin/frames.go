package plugin

import (
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// timeSeriesFrame is one series of Grafana's time-series multi format.
func timeSeriesFrame(name string, labels data.Labels, times []time.Time, values []float64, unit string) *data.Frame {
	value := data.NewField(name, labels, values)
	if unit != "" {
		value.Config = &data.FieldConfig{Unit: unit}
	}
	f := data.NewFrame(name, data.NewField("time", nil, times), value)
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}}
	return f
}

// numericFrame is one series of Grafana's numeric multi format (one number, labels), the shape
// alert rules reduce and compare.
func numericFrame(name string, labels data.Labels, v float64, unit string) *data.Frame {
	value := data.NewField(name, labels, []float64{v})
	if unit != "" {
		value.Config = &data.FieldConfig{Unit: unit}
	}
	f := data.NewFrame(name, value)
	f.Meta = &data.FrameMeta{Type: data.FrameTypeNumericMulti, TypeVersion: data.FrameTypeVersion{0, 1}}
	return f
}
