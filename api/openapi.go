package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3 document of the usage API, served at /api/openapi.json. A test
// checks that it lists exactly the routes registerUsage serves.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
}
