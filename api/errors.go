package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Kind is a class of API error; each kind has one HTTP status, mapped here and nowhere else.
type Kind int

// Error kinds.
const (
	KindInternal         Kind = iota // 500, message hidden from the client
	KindBadRequest                   // 400: a parameter or body is malformed
	KindUnauthorized                 // 401: no token, or an invalid or revoked one
	KindForbidden                    // 403: the token's role may not do this
	KindNotFound                     // 404: unknown, or another team's resource
	KindMethodNotAllowed             // 405: the path exists, the method does not
	KindConflict                     // 409
	KindTooLarge                     // 413: body too large
	KindUnavailable                  // 503: not ready
	KindUnprocessable                // 422: well-formed, but over a limit
	KindTooManyRequests              // 429: the team's slots and queue are full
)

var kindStatus = map[Kind]int{
	KindInternal:         http.StatusInternalServerError,
	KindBadRequest:       http.StatusBadRequest,
	KindUnauthorized:     http.StatusUnauthorized,
	KindForbidden:        http.StatusForbidden,
	KindNotFound:         http.StatusNotFound,
	KindMethodNotAllowed: http.StatusMethodNotAllowed,
	KindConflict:         http.StatusConflict,
	KindTooLarge:         http.StatusRequestEntityTooLarge,
	KindUnavailable:      http.StatusServiceUnavailable,
	KindUnprocessable:    http.StatusUnprocessableEntity,
	KindTooManyRequests:  http.StatusTooManyRequests,
}

// Error is an error with a kind, a machine-readable code and a message for the client.
// The body is {"error": {"code": "...", "message": "..."}}.
type Error struct {
	Kind    Kind
	Code    string // e.g. "invalid_parameter"
	Message string // names what is wrong, e.g. "startDate: \"2024-13-01\" is not an ISO 8601 date"
	Err     error  // the cause, logged and never sent
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// BadParam is a 400 naming the parameter.
func BadParam(param, format string, args ...any) *Error {
	return &Error{Kind: KindBadRequest, Code: "invalid_parameter", Message: param + ": " + fmt.Sprintf(format, args...)}
}

// NotFound is a 404 naming what was not found.
func NotFound(format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Code: "not_found", Message: fmt.Sprintf(format, args...)}
}

// Forbidden is a 403.
func Forbidden(format string, args ...any) *Error {
	return &Error{Kind: KindForbidden, Code: "forbidden", Message: fmt.Sprintf(format, args...)}
}

// Unauthorized is a 401.
func Unauthorized(format string, args ...any) *Error {
	return &Error{Kind: KindUnauthorized, Code: "unauthorized", Message: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteError writes err as the JSON error body with the status of its kind. Errors that are
// not *Error are internal: logged by the caller, shown as a generic message.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Kind: KindInternal, Code: "internal", Message: "internal error", Err: err}
	}
	var body errorBody
	body.Error.Code = e.Code
	body.Error.Message = e.Message
	if e.Kind == KindInternal {
		body.Error.Message = "internal error"
	}
	if e.Kind == KindUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cygni-usage"`)
	}
	WriteJSON(w, kindStatus[e.Kind], body)
}

// WriteJSON writes v as JSON with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
