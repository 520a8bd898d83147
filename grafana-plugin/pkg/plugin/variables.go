package plugin

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// Variable query kinds.
const (
	VariableProjects    = "projects"
	VariableDeployments = "deployments"
	VariableMetrics     = "metrics"
)

// variable answers a dashboard variable's query: one frame with the fields text (what the
// drop-down shows) and value (what queries get), the names Grafana reads variable options from.
//
//   - projects: the team's projects, text the name, value the id;
//   - deployments: the deployments (ECS services) of the selected projects that have usage in
//     the range, from the Prometheus API's label values;
//   - metrics: the usage query's metrics.
func (d *Datasource) variable(ctx context.Context, q Query, dq backend.DataQuery) (backend.DataResponse, error) {
	var res backend.DataResponse
	var text, value []string
	switch q.Variable {
	case VariableProjects:
		projects, err := d.teamProjects(ctx)
		if err != nil {
			return res, err
		}
		slices.SortFunc(projects, func(a, b project) int { return strings.Compare(projectName(a), projectName(b)) })
		for _, p := range projects {
			text, value = append(text, projectName(p)), append(value, p.id)
		}
	case VariableDeployments:
		ids, err := parseProjects(q.Project)
		if err != nil {
			return res, err
		}
		sel := "cygni_cpu_seconds"
		if ids != nil {
			quoted := make([]string, len(ids))
			for i, id := range ids {
				quoted[i] = regexp.QuoteMeta(id)
			}
			sel = fmt.Sprintf(`cygni_cpu_seconds{project=~%q}`, strings.Join(quoted, "|"))
		}
		params := url.Values{"match[]": {sel}, "start": {promTime(dq.TimeRange.From)}, "end": {promTime(dq.TimeRange.To)}}
		var ans struct {
			Data []string `json:"data"`
		}
		if err := d.api.get(ctx, "/api/v1/label/deployment/values", params, &ans); err != nil {
			return res, err
		}
		slices.Sort(ans.Data)
		text, value = ans.Data, slices.Clone(ans.Data)
	case VariableMetrics:
		for _, m := range Metrics {
			text, value = append(text, m.Label), append(value, m.Value)
		}
	default:
		return res, queryError(fmt.Sprintf("variable %q is not one of projects, deployments, metrics", q.Variable))
	}
	if text == nil {
		text, value = []string{}, []string{}
	}
	res.Frames = data.Frames{data.NewFrame("variable", data.NewField("text", nil, text), data.NewField("value", nil, value))}
	return res, nil
}
