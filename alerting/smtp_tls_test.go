package alerting

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/cygni/usage/internal/smtptest"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// authBackend is the test SMTP server requiring PLAIN authentication.
type authBackend struct {
	*smtptest.Server
	mu     sync.Mutex
	logins []string
}

type authSession struct {
	*smtptest.Session
	b *authBackend
}

func (b *authBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &authSession{Session: &smtptest.Session{S: b.Server}, b: b}, nil
}

func (a *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (a *authSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "cygni" || pass != "hunter2" {
			return errors.New("invalid credentials")
		}
		a.b.mu.Lock()
		a.b.logins = append(a.b.logins, user)
		a.b.mu.Unlock()
		return nil
	}), nil
}

// E-mail over STARTTLS and implicit TLS with authentication, against a real SMTP server.
func TestSMTPTLSModes(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, mode := range []string{"starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			b := &authBackend{Server: &smtptest.Server{}}
			srv := smtp.NewServer(b)
			srv.Domain = "localhost"
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
			var ln net.Listener
			var err error
			if mode == "tls" {
				ln, err = tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
			} else {
				ln, err = net.Listen("tcp", "127.0.0.1:0")
			}
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(ln) }()
			t.Cleanup(func() { _ = srv.Close() })

			port := ln.Addr().(*net.TCPAddr).Port
			d, err := NewSMTPDeliverer(SMTPOptions{
				Host: "127.0.0.1", Port: port, TLS: mode, Username: "cygni", Password: "hunter2",
				From: "billing@cygni.test", TLSConfig: &tls.Config{ServerName: "127.0.0.1", RootCAs: pool, MinVersion: tls.VersionTLS12},
			})
			if err != nil {
				t.Fatal(err)
			}
			payload, _ := json.Marshal(Email{To: []string{"ana@acme.test"}, Subject: "[Cygni] test", Text: "hello $1.00", HTML: "<p>hello</p>", MessageID: "ntf_x@cygni-usage"})
			if err := d.Deliver(context.Background(), payload); err != nil {
				t.Fatal(err)
			}
			msgs := b.Messages()
			if len(msgs) != 1 || msgs[0].Subject != "[Cygni] test" || msgs[0].To[0] != "ana@acme.test" || msgs[0].Header.Get("Message-Id") != "<ntf_x@cygni-usage>" {
				t.Fatalf("received %+v", msgs)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if len(b.logins) != 1 {
				t.Fatalf("logins %v", b.logins)
			}
		})
	}
	t.Run("starttls required", func(t *testing.T) {
		plain := startSMTP(t, "127.0.0.1:0") // offers no STARTTLS
		d, err := NewSMTPDeliverer(SMTPOptions{Host: "127.0.0.1", Port: plain.port(t), TLS: "starttls", From: "billing@cygni.test"})
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(Email{To: []string{"ana@acme.test"}, Subject: "s", Text: "t", MessageID: "m@x"})
		if err := d.Deliver(context.Background(), payload); err == nil || len(plain.messages()) != 0 {
			t.Fatalf("Deliver without STARTTLS = %v, %d messages; want a refusal", err, len(plain.messages()))
		}
	})
}
