package simaws

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Spike multiplies the running tasks of every service of Project by Factor during the minutes
// that start in [From, To): a usage spike (a runaway deployment, a traffic surge) for the
// anomaly alert. Spikes change the fleet's usage, so Truth includes them; the data of a minute
// is what CloudWatch serves when it is read, so a spike set for minutes the collector already
// read (beyond its look-back) is not seen, exactly as with real CloudWatch.
type Spike struct {
	Project  string    `json:"project"`
	Factor   int64     `json:"factor"` // 2..100
	From, To time.Time // To after From
}

// spikeJSON is a Spike on the wire of /_sim/spikes.
type spikeJSON struct {
	Project string    `json:"project"`
	Factor  int64     `json:"factor"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
}

// Validate reports what is wrong with a spike.
func (sp Spike) Validate() error {
	switch {
	case sp.Project == "":
		return fmt.Errorf("spike: the project is empty")
	case sp.Factor < 2 || sp.Factor > 100:
		return fmt.Errorf("spike of %s: factor %d; want 2..100", sp.Project, sp.Factor)
	case !sp.To.After(sp.From):
		return fmt.Errorf("spike of %s: to %s is not after from %s", sp.Project, sp.To.Format(time.RFC3339), sp.From.Format(time.RFC3339))
	}
	return nil
}

// AddSpike adds a spike (they multiply where they overlap).
func (s *Sim) AddSpike(sp Spike) error {
	if err := sp.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := append(append([]Spike(nil), s.loadSpikes()...), sp)
	s.spikes.Store(&next)
	return nil
}

// ClearSpikes removes every spike.
func (s *Sim) ClearSpikes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spikes.Store(&[]Spike{})
}

// Spikes returns the spikes in the order they were added.
func (s *Sim) Spikes() []Spike { return append([]Spike(nil), s.loadSpikes()...) }

func (s *Sim) loadSpikes() []Spike {
	if p := s.spikes.Load(); p != nil {
		return *p
	}
	return nil
}

// spikeFactor is the task multiplier of service i in the minute starting at unix minute m.
func (s *Sim) spikeFactor(i int, m int64) int64 {
	sps := s.loadSpikes()
	if len(sps) == 0 {
		return 1
	}
	f := int64(1)
	t := m * 60
	for _, sp := range sps {
		if sp.Project == s.services[i].Project && t >= sp.From.Unix() && t < sp.To.Unix() {
			f *= sp.Factor
		}
	}
	return f
}

// ParseSpike parses the sim-aws --spike flag: "project=proj_001,factor=8,from=-1h,for=3h". from
// is RFC 3339 or a duration relative to now (default: now); for is the duration (default 1h);
// now is truncated to the minute.
func ParseSpike(v string, now time.Time) (Spike, error) {
	sp := Spike{Factor: 0}
	now = now.Truncate(time.Minute)
	sp.From, sp.To = now, now.Add(time.Hour)
	var dur time.Duration = time.Hour
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return Spike{}, fmt.Errorf("--spike %q: %q is not key=value (keys: project, factor, from, for)", v, kv)
		}
		switch k {
		case "project":
			sp.Project = val
		case "factor":
			f, err := strconv.ParseInt(strings.TrimSuffix(val, "x"), 10, 64)
			if err != nil {
				return Spike{}, fmt.Errorf("--spike %q: factor %q is not an integer", v, val)
			}
			sp.Factor = f
		case "from":
			t, err := parseInstant(val, now)
			if err != nil {
				return Spike{}, fmt.Errorf("--spike %q: from: %w", v, err)
			}
			sp.From = t
		case "for":
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return Spike{}, fmt.Errorf("--spike %q: for %q is not a positive duration", v, val)
			}
			dur = d
		default:
			return Spike{}, fmt.Errorf("--spike %q: unknown key %q (keys: project, factor, from, for)", v, k)
		}
	}
	sp.To = sp.From.Add(dur)
	return sp, sp.Validate()
}

// parseInstant reads an RFC 3339 time or a duration relative to now ("-90m", "+1h").
func parseInstant(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration like -1h", v)
	}
	return now.Add(d), nil
}

// serveSpikes answers /_sim/spikes: GET lists, POST adds one ({"project", "factor", "from",
// "to"} or "duration" instead of "to"; from and to are RFC 3339 or relative to now like "-1h",
// from defaults to now), DELETE removes all.
func (s *Sim) serveSpikes(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		out := []spikeJSON{}
		for _, sp := range s.Spikes() {
			out = append(out, spikeJSON(sp))
		}
		writeJSON(w, http.StatusOK, out)
	case http.MethodPost:
		var in struct {
			Project  string `json:"project"`
			Factor   int64  `json:"factor"`
			From     string `json:"from"`
			To       string `json:"to"`
			Duration string `json:"duration"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			writeControlError(w, "bad_spike", fmt.Sprintf("decode spike: %v", err))
			return
		}
		now := s.now().Truncate(time.Minute)
		sp := Spike{Project: in.Project, Factor: in.Factor, From: now}
		var err error
		if in.From != "" {
			if sp.From, err = parseInstant(in.From, now); err != nil {
				writeControlError(w, "bad_spike", "from: "+err.Error())
				return
			}
		}
		switch {
		case in.To != "" && in.Duration != "":
			writeControlError(w, "bad_spike", "give to or duration, not both")
			return
		case in.To != "":
			if sp.To, err = parseInstant(in.To, now); err != nil {
				writeControlError(w, "bad_spike", "to: "+err.Error())
				return
			}
		default:
			d := time.Hour
			if in.Duration != "" {
				if d, err = time.ParseDuration(in.Duration); err != nil || d <= 0 {
					writeControlError(w, "bad_spike", fmt.Sprintf("duration %q is not a positive duration", in.Duration))
					return
				}
			}
			sp.To = sp.From.Add(d)
		}
		if !s.hasProject(sp.Project) {
			writeControlError(w, "not_found", fmt.Sprintf("no service of project %q", sp.Project))
			return
		}
		if err := s.AddSpike(sp); err != nil {
			writeControlError(w, "bad_spike", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, spikeJSON(sp))
	case http.MethodDelete:
		s.ClearSpikes()
		writeJSON(w, http.StatusOK, []spikeJSON{})
	default:
		writeControlError(w, "method_not_allowed", "use GET, POST or DELETE on /_sim/spikes")
	}
}

func (s *Sim) hasProject(p string) bool {
	for _, svc := range s.services {
		if p != "" && svc.Project == p {
			return true
		}
	}
	return false
}
