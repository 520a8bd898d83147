package api

// AuthDeps are the dependencies of the auth middleware (filled in by the store issue).
type AuthDeps struct{}
