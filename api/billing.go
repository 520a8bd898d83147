package api

import "github.com/gorilla/mux"

// BillingDeps are the dependencies of the billing endpoints.
type BillingDeps struct{}

func (s *Server) registerBilling(r *mux.Router) {}
