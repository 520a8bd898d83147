package api

import "github.com/gorilla/mux"

// NotificationDeps are the dependencies of the notifications endpoints.
type NotificationDeps struct{}

func (s *Server) registerNotifications(r *mux.Router) {}
