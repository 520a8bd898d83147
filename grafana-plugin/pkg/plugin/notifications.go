package plugin

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

type notificationJSON struct {
	ID        string  `json:"id"`
	Type      string  `json:"type"`
	Severity  string  `json:"severity"`
	ProjectID *string `json:"projectId"`
	Message   string  `json:"message"`
	CreatedAt string  `json:"createdAt"`
	Read      bool    `json:"read"`
}

type notificationsJSON struct {
	Notifications []notificationJSON `json:"notifications"`
	NextCursor    *string            `json:"nextCursor"`
}

// notificationTitles are the titles of the notification types the shipped rule files raise.
var notificationTitles = map[string]string{
	"budget_warning":    "Budget warning",
	"budget_exceeded":   "Budget exceeded",
	"forecast_exceeded": "Forecast over budget",
	"usage_anomaly":     "Unusual usage",
	"alert_resolved":    "Resolved",
}

// The notifications endpoint's page size, and how many pages one query reads at most.
const (
	notificationPage     = 100
	maxNotificationPages = 100
)

var notificationType = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// notifications answers the team's notification history inside the range (budget crossings,
// forecasts, anomalies, resolutions), newest first, for the selected projects and types: one
// table whose fields time, title, text and tags make it an annotation source as it is, plus
// type, severity, project, project_name, read and id for tables.
func (d *Datasource) notifications(ctx context.Context, q Query, dq backend.DataQuery) (backend.DataResponse, error) {
	var res backend.DataResponse
	ids, err := parseProjects(q.Project)
	if err != nil {
		return res, err
	}
	for _, t := range q.Types {
		if !notificationType.MatchString(t) {
			return res, queryError(fmt.Sprintf("notification type %q is not a type such as budget_warning, budget_exceeded, forecast_exceeded or usage_anomaly", t))
		}
	}
	projects, err := d.selectProjects(ctx, ids)
	if err != nil {
		return res, err
	}
	names := map[string]string{}
	for _, p := range projects {
		names[p.id] = projectName(p)
	}
	from, to := dq.TimeRange.From, dq.TimeRange.To
	var (
		times                                  []time.Time
		titles, texts, tags, types, severities []string
		projectIDs, projectNames, notifIDs     []string
		read                                   []bool
		cursor                                 string
	)
	truncated := false
	for pages, more := 0, true; more; pages++ {
		if pages == maxNotificationPages {
			truncated = true
			break
		}
		params := url.Values{"limit": {strconv.Itoa(notificationPage)}}
		if cursor != "" {
			params.Set("cursor", cursor)
		}
		var page notificationsJSON
		if err := d.api.get(ctx, "/api/usage/notifications", params, &page); err != nil {
			return res, err
		}
		more = page.NextCursor != nil
		if more {
			cursor = *page.NextCursor
		}
		for _, n := range page.Notifications {
			at, err := time.Parse(time.RFC3339, n.CreatedAt)
			if err != nil {
				return res, fmt.Errorf("the notification %s's createdAt %q: %w", n.ID, n.CreatedAt, err)
			}
			if at.Before(from) {
				more = false // newest first: the rest is older still
				break
			}
			if at.After(to) {
				continue
			}
			pid := ""
			if n.ProjectID != nil {
				pid = *n.ProjectID
			}
			if (ids != nil && !slices.Contains(ids, pid)) || (len(q.Types) > 0 && !slices.Contains(q.Types, n.Type)) {
				continue
			}
			title := notificationTitles[n.Type]
			if title == "" {
				title = n.Type
			}
			tagList := []string{n.Type, n.Severity}
			if pid != "" {
				tagList = append(tagList, pid)
			}
			times = append(times, at)
			titles = append(titles, title)
			texts = append(texts, n.Message)
			tags = append(tags, strings.Join(tagList, ","))
			types = append(types, n.Type)
			severities = append(severities, n.Severity)
			projectIDs = append(projectIDs, pid)
			projectNames = append(projectNames, names[pid])
			read = append(read, n.Read)
			notifIDs = append(notifIDs, n.ID)
		}
	}
	frame := data.NewFrame("notifications",
		data.NewField("time", nil, times),
		data.NewField("title", nil, titles),
		data.NewField("text", nil, texts),
		data.NewField("tags", nil, tags),
		data.NewField("type", nil, types),
		data.NewField("severity", nil, severities),
		data.NewField("project", nil, projectIDs),
		data.NewField("project_name", nil, projectNames),
		data.NewField("read", nil, read),
		data.NewField("id", nil, notifIDs),
	)
	frame.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	if truncated {
		frame.Meta.Notices = []data.Notice{{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("More than %d notifications in the range: showing the newest; narrow the range to see older ones.", notificationPage*maxNotificationPages)}}
	}
	res.Frames = data.Frames{frame}
	return res, nil
}
