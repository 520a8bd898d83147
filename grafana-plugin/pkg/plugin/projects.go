package plugin

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// maxProjects bounds the projects one query may name.
const maxProjects = 1000

// projectID is what cygni-usage accepts as a project id.
var projectID = regexp.MustCompile(`^proj_[A-Za-z0-9_-]{1,64}$`)

// allProjects are the values that select every project of the team: nothing, Grafana's "All"
// (the $__all marker, or the text), and the regular expressions a Prometheus-style All value
// is usually set to.
var allProjects = []string{"", "$__all", "All", "all", "*", ".*", ".+"}

// parseProjects reads a query's project selection: nil for every project of the team, else the
// ids in the order given, without repeats. It takes one id, a comma list ("a,b"), Grafana's
// default multi-value format ("{a,b}") and its regex format ("(a|b)"), so that a dashboard
// variable reaches the query whichever way the panel interpolated it.
func parseProjects(raw string) ([]string, error) {
	s := strings.TrimSpace(raw)
	if slices.Contains(allProjects, s) {
		return nil, nil
	}
	switch {
	case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"),
		strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")"):
		s = s[1 : len(s)-1]
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '|' })
	var ids []string
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if slices.Contains(allProjects, p) {
			return nil, nil // "All" among the selected values selects everything
		}
		if !projectID.MatchString(p) {
			if strings.HasPrefix(p, "$") {
				return nil, queryError(fmt.Sprintf("project %q is a dashboard variable that was not replaced: define it on the dashboard, or pick a project", raw))
			}
			return nil, queryError(fmt.Sprintf("project %q: %q is not a project id (proj_ followed by 1-64 letters, digits, '-' or '_'); give one id, several separated by commas, or leave it empty for all", raw, p))
		}
		if !slices.Contains(ids, p) {
			ids = append(ids, p)
		}
	}
	if len(ids) == 0 {
		return nil, queryError(fmt.Sprintf("project %q names no project", raw))
	}
	if len(ids) > maxProjects {
		return nil, queryError(fmt.Sprintf("project names %d projects; at most %d, or leave it empty for all", len(ids), maxProjects))
	}
	return ids, nil
}

// project is one of the team's projects.
type project struct{ id, name string }

type limitsJSON struct {
	Projects []struct {
		ProjectID   string `json:"projectId"`
		ProjectName string `json:"projectName"`
	} `json:"projects"`
}

// teamProjects lists the token's team's projects (GET /api/usage/limits), in the API's order.
func (d *Datasource) teamProjects(ctx context.Context) ([]project, error) {
	var limits limitsJSON
	if err := d.api.get(ctx, "/api/usage/limits", nil, &limits); err != nil {
		return nil, err
	}
	out := make([]project, 0, len(limits.Projects))
	for _, p := range limits.Projects {
		out = append(out, project{p.ProjectID, p.ProjectName})
	}
	return out, nil
}

// selectProjects returns the selected projects with their names: every project of the team for
// nil, else the ids asked for. An id the team does not own is a 404, as cygni-usage answers for
// any other team's project.
func (d *Datasource) selectProjects(ctx context.Context, ids []string) ([]project, error) {
	all, err := d.teamProjects(ctx)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		return all, nil
	}
	out := make([]project, 0, len(ids))
	for _, id := range ids {
		i := slices.IndexFunc(all, func(p project) bool { return p.id == id })
		if i < 0 {
			return nil, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("project %q not found", id)}
		}
		out = append(out, all[i])
	}
	return out, nil
}
