package api

import "github.com/gorilla/mux"

// PromDeps are the dependencies of the prom endpoints.
type PromDeps struct{}

func (s *Server) registerProm(r *mux.Router) {}
