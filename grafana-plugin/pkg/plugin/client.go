package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client calls the cygni-usage HTTP API with a team's bearer token.
type client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// apiError is a non-2xx answer of cygni-usage, with the message of its JSON error body
// ({"error":{"code","message"}}) or of the Prometheus envelope ({"status":"error","error"}).
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("cygni-usage answered %d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("cygni-usage answered %d: %s", e.Status, e.Message)
}

// get calls GET path?params and decodes the JSON answer into out.
func (c *client) get(ctx context.Context, path string, params url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, params, out)
}

// postForm calls POST path with a form body, as Grafana's Prometheus data source does.
func (c *client) postForm(ctx context.Context, path string, params url.Values, out any) error {
	return c.do(ctx, http.MethodPost, path, params, out)
}

func (c *client) do(ctx context.Context, method, path string, params url.Values, out any) error {
	u := c.base.JoinPath(path)
	var body io.Reader
	if method == http.MethodGet {
		u.RawQuery = params.Encode()
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("call cygni-usage at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
		var body struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(raw, &body) == nil && len(body.Error) > 0 {
			var obj struct{ Code, Message string }
			var str string
			switch {
			case json.Unmarshal(body.Error, &obj) == nil:
				e.Code, e.Message = obj.Code, obj.Message
			case json.Unmarshal(body.Error, &str) == nil:
				e.Message = str
			}
		}
		return e
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decode the answer of %s %s: %w", method, path, err)
	}
	return nil
}

func newClient(rawURL, token string, timeout time.Duration) (*client, error) {
	if rawURL == "" {
		return nil, errors.New("the data source has no URL: set it to the cygni-usage address, e.g. http://cygni-usage:8080")
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the URL %q is not an http(s) address of cygni-usage", rawURL)
	}
	return &client{base: u, token: token, http: &http.Client{Timeout: timeout}}, nil
}
