package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// ResourceOption is one entry of a drop-down list served by CallResource.
type ResourceOption struct {
	Value       string `json:"value"`
	Label       string `json:"label"`
	Description string `json:"description,omitempty"`
}

// CallResource serves the editors' drop-downs: GET projects (the team's projects) and GET
// metrics (the usage query's metrics).
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	send := func(status int, v any) error {
		body, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode the resource answer: %w", err)
		}
		return sender.Send(&backend.CallResourceResponse{Status: status, Headers: map[string][]string{"Content-Type": {"application/json"}}, Body: body})
	}
	type errBody struct {
		Message string `json:"message"`
	}
	switch strings.Trim(req.Path, "/") {
	case "metrics":
		out := make([]ResourceOption, 0, len(Metrics))
		for _, m := range Metrics {
			out = append(out, ResourceOption{Value: m.Value, Label: m.Label, Description: m.Description})
		}
		return send(http.StatusOK, out)
	case "projects":
		if err := d.usable(); err != nil {
			return send(http.StatusBadRequest, errBody{err.Error()})
		}
		projects, err := d.teamProjects(ctx)
		if err != nil {
			status := http.StatusBadGateway
			if ae := (*apiError)(nil); errors.As(err, &ae) && ae.Status/100 == 4 {
				status = ae.Status
			}
			return send(status, errBody{err.Error()})
		}
		out := make([]ResourceOption, 0, len(projects))
		for _, p := range projects {
			label := p.id
			if p.name != "" {
				label = p.name + " (" + p.id + ")"
			}
			out = append(out, ResourceOption{Value: p.id, Label: label})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
		return send(http.StatusOK, out)
	}
	return send(http.StatusNotFound, errBody{fmt.Sprintf("no resource %q: use projects or metrics", req.Path)})
}
