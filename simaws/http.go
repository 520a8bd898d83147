package simaws

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

const (
	cloudWatchPathPrefix = "/service/GraniteServiceVersion20100801/operation/"
	ecsTargetPrefix      = "AmazonEC2ContainerServiceV20141113."
	maxBodyBytes         = 16 << 20
)

// apiError is an AWS error answer. typ is the body's __type; code and fault form CloudWatch's
// X-Amzn-Query-Error header ("code;fault"), which sets the code the SDK reports.
type apiError struct {
	status int
	typ    string
	code   string
	fault  string // "Sender" or "Receiver"
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func errValidation(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "ValidationError", "ValidationError", "Sender", msg}
}

func errInvalidParameter(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterValueException", "InvalidParameterValue", "Sender", msg}
}

func errNextToken() *apiError {
	return &apiError{http.StatusBadRequest, "InvalidNextToken", "InvalidNextToken", "Sender", "The NextToken is invalid or expired."}
}

func errSerialization(err error) *apiError {
	return &apiError{http.StatusBadRequest, "SerializationException", "SerializationException", "Sender", err.Error()}
}

// service tells the CloudWatch and ECS protocols apart where they differ.
type service int

const (
	svcCloudWatch service = iota
	svcECS
)

func (s *Sim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/_sim/"):
		s.serveControl(w, r)
	case strings.HasPrefix(r.URL.Path, cloudWatchPathPrefix):
		op := strings.TrimPrefix(r.URL.Path, cloudWatchPathPrefix)
		s.serveAPI(w, r, svcCloudWatch, op)
	case r.URL.Path == "/" && r.Header.Get("X-Amz-Target") != "":
		op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), ecsTargetPrefix)
		if !ok {
			writeJSONError(w, &apiError{status: http.StatusBadRequest, typ: "UnknownOperationException",
				msg: fmt.Sprintf("unknown X-Amz-Target %q", r.Header.Get("X-Amz-Target"))})
			return
		}
		s.serveAPI(w, r, svcECS, op)
	default:
		http.NotFound(w, r)
	}
}

// serveAPI counts the call, authenticates it, applies injected faults and runs the operation.
func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request, svc service, op string) {
	s.mu.Lock()
	s.calls[op]++
	s.seq++
	reqID := fmt.Sprintf("00000000-0000-4000-8000-%012x", s.seq)
	s.mu.Unlock()
	w.Header().Set("X-Amzn-Requestid", reqID)

	writeErr := writeJSONError
	if svc == svcCloudWatch {
		writeErr = writeCBORError
	}
	if r.Method != http.MethodPost {
		writeErr(w, &apiError{http.StatusMethodNotAllowed, "UnsupportedOperation", "UnsupportedOperation", "Sender", "only POST is served"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		writeErr(w, errSerialization(fmt.Errorf("read request body: %w", err)))
		return
	}
	if apiErr := s.authenticate(r, body, svc); apiErr != nil {
		writeErr(w, apiErr)
		return
	}
	if apiErr := s.takeFault(svc); apiErr != nil {
		writeErr(w, apiErr)
		return
	}

	var out []byte
	var apiErr *apiError
	switch {
	case svc == svcCloudWatch && op == "GetMetricData":
		out, apiErr = s.getMetricData(body)
	case svc == svcCloudWatch && op == "ListMetrics":
		out, apiErr = s.listMetrics(body)
	case svc == svcECS:
		out, apiErr = s.serveECS(op, body)
	default:
		apiErr = &apiError{http.StatusBadRequest, "UnknownOperationException", "UnknownOperation", "Sender",
			fmt.Sprintf("operation %q is not supported by the simulated endpoint", op)}
	}
	if apiErr != nil {
		writeErr(w, apiErr)
		return
	}
	h := w.Header()
	if svc == svcCloudWatch {
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
		h.Set("Content-Type", "application/cbor")
	} else {
		h.Set("Content-Type", "application/x-amz-json-1.1")
	}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// takeFault consumes one injected fault for svc, if any is pending.
func (s *Sim) takeFault(svc service) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.faults
	switch {
	case svc == svcCloudWatch && f.ThrottleCloudWatch > 0:
		f.ThrottleCloudWatch--
		return &apiError{http.StatusBadRequest, "Throttling", "Throttling", "Sender", "Rate exceeded"}
	case svc == svcCloudWatch && f.FailCloudWatch > 0:
		f.FailCloudWatch--
		return &apiError{http.StatusInternalServerError, "InternalFailure", "InternalFailure", "Receiver", "The request processing has failed because of an unknown error, exception or failure."}
	case svc == svcECS && f.ThrottleECS > 0:
		f.ThrottleECS--
		return &apiError{http.StatusBadRequest, "ThrottlingException", "ThrottlingException", "Sender", "Rate exceeded"}
	case svc == svcECS && f.FailECS > 0:
		f.FailECS--
		return &apiError{http.StatusInternalServerError, "ServerException", "ServerException", "Receiver", "Service unavailable. Please try again later."}
	}
	return nil
}

func writeCBORError(w http.ResponseWriter, e *apiError) {
	body := cbor.Encode(cbor.Map{"__type": cbor.String(e.typ), "message": cbor.String(e.msg)})
	h := w.Header()
	h.Set("Smithy-Protocol", "rpc-v2-cbor")
	h.Set("Content-Type", "application/cbor")
	if e.code != "" {
		h.Set("X-Amzn-Query-Error", e.code+";"+e.fault)
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

func writeJSONError(w http.ResponseWriter, e *apiError) {
	body, _ := json.Marshal(map[string]string{"__type": e.typ, "message": e.msg})
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("X-Amzn-Errortype", e.typ)
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// Control routes.

// faultsJSON is Faults on the wire of POST /_sim/faults: durations as Go duration strings
// ("5m") or as nanoseconds.
type faultsJSON struct {
	ThrottleCloudWatch int
	FailCloudWatch     int
	ThrottleECS        int
	FailECS            int
	LateBy             jsonDuration
	Partial            jsonDuration
}

type jsonDuration time.Duration

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("parse duration %q: %w", s, err)
		}
		*d = jsonDuration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration %s is neither a string like \"5m\" nor nanoseconds", b)
	}
	*d = jsonDuration(n)
	return nil
}

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_sim/services":
		writeJSON(w, http.StatusOK, s.Services())
	case "/_sim/calls":
		writeJSON(w, http.StatusOK, s.Calls())
	case "/_sim/faults":
		switch r.Method {
		case http.MethodGet:
			f := s.currentFaults()
			writeJSON(w, http.StatusOK, faultsJSON{f.ThrottleCloudWatch, f.FailCloudWatch, f.ThrottleECS, f.FailECS,
				jsonDuration(f.LateBy), jsonDuration(f.Partial)})
		case http.MethodPost, http.MethodPut:
			var fj faultsJSON
			dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&fj); err != nil {
				writeControlError(w, "bad_faults", fmt.Sprintf("decode faults: %v", err))
				return
			}
			f := Faults{fj.ThrottleCloudWatch, fj.FailCloudWatch, fj.ThrottleECS, fj.FailECS,
				time.Duration(fj.LateBy), time.Duration(fj.Partial)}
			s.SetFaults(f)
			writeJSON(w, http.StatusOK, fj)
		default:
			writeControlError(w, "method_not_allowed", "use GET or POST on /_sim/faults")
		}
	case "/_sim/truth":
		s.serveTruth(w, r)
	case "/_sim/spikes":
		s.serveSpikes(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Sim) serveTruth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	project, deployment, series := q.Get("project"), q.Get("deployment"), q.Get("series")
	if project == "" {
		writeControlError(w, "bad_project", "parameter 'project' is required")
		return
	}
	if _, ok := seriesKind(series); !ok {
		writeControlError(w, "bad_series", fmt.Sprintf("parameter 'series' %q is not a known series", series))
		return
	}
	from, err := time.Parse(time.RFC3339, q.Get("from"))
	if err != nil {
		writeControlError(w, "bad_from", fmt.Sprintf("parameter 'from' %q is not RFC3339", q.Get("from")))
		return
	}
	to, err := time.Parse(time.RFC3339, q.Get("to"))
	if err != nil {
		writeControlError(w, "bad_to", fmt.Sprintf("parameter 'to' %q is not RFC3339", q.Get("to")))
		return
	}
	var v float64
	found := false
	for _, svc := range s.services {
		if svc.Project == project && (deployment == "" || svc.Deployment == deployment) {
			v += s.Truth(svc, series, from, to)
			found = true
		}
	}
	if !found {
		writeControlError(w, "not_found", fmt.Sprintf("no service of project %q deployment %q", project, deployment))
		return
	}
	writeJSON(w, http.StatusOK, map[string]float64{"value": v})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeControlError(w http.ResponseWriter, code, msg string) {
	status := http.StatusBadRequest
	switch code {
	case "not_found":
		status = http.StatusNotFound
	case "method_not_allowed":
		status = http.StatusMethodNotAllowed
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
