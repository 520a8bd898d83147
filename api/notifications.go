package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/cygni/usage/store"
)

// NotificationStore is what the notifications endpoints need from the metadata store.
type NotificationStore interface {
	ListNotifications(ctx context.Context, teamID string, q store.NotificationQuery) (store.NotificationPage, error)
	MarkNotificationRead(ctx context.Context, teamID, id string) (store.Notification, error)
}

// NotificationDeps are the dependencies of the notifications endpoints.
type NotificationDeps struct {
	Notifications NotificationStore // nil: the endpoints answer 503
	Unmapped      UnmappedDeps      // GET /api/usage/unmapped
}

// maxBodyBytes bounds every request body of this file's endpoints (413 above it).
const maxBodyBytes = 1 << 20

func (s *Server) registerNotifications(r *mux.Router) {
	r.Handle("/api/usage/notifications", s.authed(RoleMember, s.listNotifications)).Methods(http.MethodGet)
	r.Handle("/api/usage/notifications/{id}/read", s.authed(RoleMember, s.markNotificationRead)).Methods(http.MethodPost)
	s.registerUnmapped(r)
}

// notificationJSON is one notification in the API.
type notificationJSON struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Severity  string         `json:"severity"`
	ProjectID *string        `json:"projectId"`
	Message   string         `json:"message"`
	Payload   map[string]any `json:"payload"`
	CreatedAt string         `json:"createdAt"`
	Read      bool           `json:"read"`
	ReadAt    *string        `json:"readAt"`
}

// notificationsJSON is the body of GET /api/usage/notifications.
type notificationsJSON struct {
	Notifications []notificationJSON `json:"notifications"`
	UnreadCount   int                `json:"unreadCount"`
	NextCursor    *string            `json:"nextCursor"`
}

func toNotificationJSON(n store.Notification) notificationJSON {
	out := notificationJSON{
		ID: n.ID, Type: n.Type, Severity: n.Severity, Message: n.Message, Payload: n.Payload,
		CreatedAt: n.CreatedAt.UTC().Format(time.RFC3339), Read: n.ReadAt != nil,
	}
	if n.ProjectID != "" {
		p := n.ProjectID
		out.ProjectID = &p
	}
	if out.Payload == nil {
		out.Payload = map[string]any{}
	}
	if n.ReadAt != nil {
		r := n.ReadAt.UTC().Format(time.RFC3339)
		out.ReadAt = &r
	}
	return out
}

func (s *Server) notificationStore() (NotificationStore, error) {
	if s.opts.Notifications == nil {
		return nil, &Error{Kind: KindUnavailable, Code: "not_configured", Message: "the metadata store is not configured"}
	}
	return s.opts.Notifications, nil
}

// listNotifications serves GET /api/usage/notifications?limit=&cursor=&unread=.
func (s *Server) listNotifications(w http.ResponseWriter, r *http.Request) {
	ns, err := s.notificationStore()
	if err != nil {
		WriteError(w, err)
		return
	}
	p, _ := PrincipalFrom(r.Context())
	q := store.NotificationQuery{Limit: store.DefaultNotificationLimit}
	v := r.URL.Query()
	for name := range v {
		switch name {
		case "limit", "cursor", "unread":
			if len(v[name]) > 1 {
				WriteError(w, BadParam(name, "given %d times; give it once", len(v[name])))
				return
			}
		default:
			WriteError(w, BadParam(name, "unknown parameter; this endpoint takes limit, cursor and unread"))
			return
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > store.MaxNotificationLimit {
			WriteError(w, BadParam("limit", "%q is not an integer in 1..%d", l, store.MaxNotificationLimit))
			return
		}
		q.Limit = n
	}
	q.Cursor = v.Get("cursor")
	switch u := v.Get("unread"); u {
	case "": // all
	case "true":
		q.UnreadOnly = true
	case "false":
		q.ReadOnly = true
	default:
		WriteError(w, BadParam("unread", "%q is neither true nor false", u))
		return
	}
	page, err := ns.ListNotifications(r.Context(), p.TeamID, q)
	if errors.Is(err, store.ErrBadCursor) {
		WriteError(w, BadParam("cursor", "%q is not a cursor returned by this endpoint", q.Cursor))
		return
	}
	if err != nil {
		s.internal(w, "list notifications", err)
		return
	}
	body := notificationsJSON{Notifications: make([]notificationJSON, 0, len(page.Items)), UnreadCount: page.UnreadCount}
	for _, n := range page.Items {
		body.Notifications = append(body.Notifications, toNotificationJSON(n))
	}
	if page.NextCursor != "" {
		body.NextCursor = &page.NextCursor
	}
	WriteJSON(w, http.StatusOK, body)
}

// markNotificationRead serves POST /api/usage/notifications/{id}/read. The body may be empty or
// an empty JSON object. Marking twice keeps the first read time; another team's id is a 404.
func (s *Server) markNotificationRead(w http.ResponseWriter, r *http.Request) {
	ns, err := s.notificationStore()
	if err != nil {
		WriteError(w, err)
		return
	}
	p, _ := PrincipalFrom(r.Context())
	id := mux.Vars(r)["id"]
	if err := store.CheckID(store.PrefixNotification, id); err != nil {
		WriteError(w, BadParam("id", "%v", err))
		return
	}
	var body struct{}
	if err := decodeOptionalJSON(w, r, &body); err != nil {
		WriteError(w, err)
		return
	}
	n, err := ns.MarkNotificationRead(r.Context(), p.TeamID, id)
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, NotFound("notification %s not found", id))
		return
	}
	if err != nil {
		s.internal(w, "mark notification read", err)
		return
	}
	WriteJSON(w, http.StatusOK, toNotificationJSON(n))
}

// internal logs err and writes a 500 without its details.
func (s *Server) internal(w http.ResponseWriter, what string, err error) {
	s.logger.Error(what+"; answering 500", "err", err)
	WriteError(w, &Error{Kind: KindInternal, Code: "internal", Message: what, Err: err})
}

// decodeOptionalJSON decodes a request body of at most maxBodyBytes into dst, strictly: unknown
// fields, trailing data and malformed JSON are 400s naming the problem, an oversized body a
// 413. An empty body leaves dst alone.
func decodeOptionalJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if r.Body == nil {
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	b, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &Error{Kind: KindTooLarge, Code: "body_too_large", Message: fmt.Sprintf("body: larger than %d bytes", maxBodyBytes)}
	}
	if err != nil {
		return BadParam("body", "unreadable: %v", err)
	}
	if len(b) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return BadParam("body", "%v", err)
	}
	if dec.More() {
		return BadParam("body", "trailing data after the JSON value")
	}
	return nil
}
