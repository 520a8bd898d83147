package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// budgetFields are the quantities of GET /api/projects/{id}/budget, with their Grafana units.
var budgetFields = []struct{ name, unit string }{
	{"used", "currencyUSD"},
	{"limit", "currencyUSD"},
	{"remaining", "currencyUSD"},
	{"percentUsed", "percent"},
	{"forecast", "currencyUSD"},
}

type budgetJSON struct {
	ProjectID   string      `json:"projectId"`
	Used        json.Number `json:"used"`
	Limit       json.Number `json:"limit"`
	Remaining   json.Number `json:"remaining"`
	PercentUsed json.Number `json:"percentUsed"`
	Forecast    json.Number `json:"forecast"`
	Status      string      `json:"status"`
}

func (b budgetJSON) value(field string) (float64, error) {
	raw := map[string]json.Number{"used": b.Used, "limit": b.Limit, "remaining": b.Remaining, "percentUsed": b.PercentUsed, "forecast": b.Forecast}[field]
	if raw == "" {
		return math.NaN(), nil // no forecast yet
	}
	v, err := strconv.ParseFloat(raw.String(), 64)
	if err != nil {
		return 0, fmt.Errorf("the budget answer's %s %q: %w", field, raw, err)
	}
	return v, nil
}

// budget answers a budget query for the selected projects of this billing period.
//
// With a field (used, limit, remaining, percentUsed or forecast) it is one numeric-multi frame
// per project, labelled project and project_name only: one value per label set, as alert rules
// and server-side expressions need, and labels that stay the same while the status changes (a
// status label would make a new alert instance at every threshold). Without a field it is one
// numeric-long table, a row per project with its status and all five quantities, for tables
// and gauges; alert rules must pick a field.
func (d *Datasource) budget(ctx context.Context, q Query, fromAlert bool) (backend.DataResponse, error) {
	var res backend.DataResponse
	if q.Field != "" && !slices.ContainsFunc(budgetFields, func(f struct{ name, unit string }) bool { return f.name == q.Field }) {
		return res, queryError(fmt.Sprintf("budget field %q is not one of used, limit, remaining, percentUsed, forecast", q.Field))
	}
	if q.Field == "" && fromAlert {
		return res, queryError("an alert rule needs one value per project: set the budget query's field to used, limit, remaining, percentUsed or forecast")
	}
	ids, err := parseProjects(q.Project)
	if err != nil {
		return res, err
	}
	projects, err := d.selectProjects(ctx, ids)
	if err != nil {
		return res, err
	}
	budgets := make([]budgetJSON, len(projects))
	for i, p := range projects {
		if err := d.api.get(ctx, "/api/projects/"+url.PathEscape(p.id)+"/budget", nil, &budgets[i]); err != nil {
			return res, err
		}
	}
	if q.Field != "" {
		unit := budgetFields[slices.IndexFunc(budgetFields, func(f struct{ name, unit string }) bool { return f.name == q.Field })].unit
		for i, p := range projects {
			v, err := budgets[i].value(q.Field)
			if err != nil {
				return res, err
			}
			res.Frames = append(res.Frames, numericFrame(q.Field, projectLabels(p), v, unit))
		}
		return res, nil
	}
	pids, names, statuses := make([]string, len(projects)), make([]string, len(projects)), make([]string, len(projects))
	for i, p := range projects {
		pids[i], names[i], statuses[i] = p.id, projectName(p), budgets[i].Status
	}
	frame := data.NewFrame("budget",
		data.NewField("project", nil, pids),
		data.NewField("project_name", nil, names),
		data.NewField("status", nil, statuses),
	)
	for _, f := range budgetFields {
		values := make([]float64, len(projects))
		for i := range projects {
			if values[i], err = budgets[i].value(f.name); err != nil {
				return res, err
			}
		}
		field := data.NewField(f.name, nil, values)
		field.Config = &data.FieldConfig{Unit: f.unit}
		frame.Fields = append(frame.Fields, field)
	}
	frame.Meta = &data.FrameMeta{Type: data.FrameTypeNumericLong, TypeVersion: data.FrameTypeVersion{0, 1}}
	res.Frames = data.Frames{frame}
	return res, nil
}

// projectLabels are the labels of a project's series: its id and its name (the id when it has
// none, so that legends always say something).
func projectLabels(p project) data.Labels {
	return data.Labels{"project": p.id, "project_name": projectName(p)}
}

func projectName(p project) string {
	if p.name == "" {
		return p.id
	}
	return p.name
}
