package api

import "github.com/gorilla/mux"

// AlertingDeps are the dependencies of the alerting endpoints.
type AlertingDeps struct{}

func (s *Server) registerAlerting(r *mux.Router) {}
