// Package smtptest is a real SMTP server (emersion/go-smtp) on loopback for tests: it accepts
// every message and keeps it, decoded (subject, text and HTML parts), with the time it arrived.
package smtptest

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From     string
	To       []string
	Subject  string
	Text     string
	HTML     string
	Header   mail.Header
	Received time.Time // when the DATA command completed, by Server.Now
}

// Server is an smtp.Backend that keeps the messages it receives.
type Server struct {
	mu   sync.Mutex
	msgs []Message
	// Addr is host:port once started with Start.
	Addr string
	// Now stamps Message.Received; nil: the wall clock. A test that compares arrivals with its
	// own clock (e2e.Clock) sets it before the first message.
	Now func() time.Time
}

// Session is one SMTP session of a Server; embed it to add authentication.
type Session struct {
	S    *Server
	from string
	to   []string
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(*smtp.Conn) (smtp.Session, error) { return &Session{S: s}, nil }

// Reset implements smtp.Session.
func (ss *Session) Reset() { ss.from, ss.to = "", nil }

// Logout implements smtp.Session.
func (ss *Session) Logout() error { return nil }

// Mail implements smtp.Session.
func (ss *Session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

// Rcpt implements smtp.Session.
func (ss *Session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

// Data implements smtp.Session: it decodes the multipart message (quoted-printable included).
func (ss *Session) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	rc := Message{From: ss.from, To: append([]string(nil), ss.to...), Header: m.Header}
	rc.Subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(p)
		switch {
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain"):
			rc.Text = string(b)
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/html"):
			rc.HTML = string(b)
		}
	}
	ss.S.mu.Lock()
	if ss.S.Now != nil {
		rc.Received = ss.S.Now()
	} else {
		rc.Received = time.Now()
	}
	ss.S.msgs = append(ss.S.msgs, rc)
	ss.S.mu.Unlock()
	return nil
}

// Start serves a plain SMTP server on addr ("127.0.0.1:0" for any free port) until the test
// ends.
func Start(t testing.TB, addr string) *Server {
	t.Helper()
	s := &Server{}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Messages returns what the server received so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Port is the port of Addr.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n := 0
	for _, c := range p {
		n = n*10 + int(c-'0')
	}
	return n
}
