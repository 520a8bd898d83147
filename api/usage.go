package api

import "github.com/gorilla/mux"

// UsageDeps are the dependencies of the usage endpoints.
type UsageDeps struct{}

func (s *Server) registerUsage(r *mux.Router) {}
