package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/gorilla/mux"
)

// RuleReloader re-reads the alerting rule files (alerting.Manager). A broken file is rejected
// and the running rules stay; the error then lists every problem as "file:line: message".
type RuleReloader interface {
	Reload(ctx context.Context) error
	Files() []string
}

// AlertingDeps are the dependencies of the alerting endpoints. The Prometheus API's
// /api/v1/rules and /api/v1/alerts read the same rule manager through PromDeps.PromRuleGroups.
type AlertingDeps struct {
	Rules RuleReloader // nil: alerting does not run in this process
}

func (s *Server) registerAlerting(r *mux.Router) {
	r.Handle("/-/reload", s.operator(s.reloadRules)).Methods(http.MethodPost)
}

// reloadRules answers POST /-/reload: 200 {"status":"reloaded","ruleFiles":[…]}, or 400
// invalid_rule_files naming file:line of every problem while the previous rules keep running.
func (s *Server) reloadRules(w http.ResponseWriter, r *http.Request) {
	if s.opts.Rules == nil {
		WriteError(w, &Error{Kind: KindUnavailable, Code: "alerting_disabled", Message: "alerting does not run in this process"})
		return
	}
	if err := s.opts.Rules.Reload(r.Context()); err != nil {
		if errors.Is(err, context.Canceled) {
			WriteError(w, err)
			return
		}
		WriteError(w, &Error{Kind: KindBadRequest, Code: "invalid_rule_files", Message: "rule files rejected; the previous rules keep running: " + err.Error(), Err: err})
		return
	}
	files := s.opts.Rules.Files()
	if files == nil {
		files = []string{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"status": "reloaded", "ruleFiles": files})
}
