package simaws

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// sigV4 is the parsed Authorization header of a SigV4-signed request.
type sigV4 struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

func parseSigV4(h string) (sigV4, bool) {
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return sigV4{}, false
	}
	var a sigV4
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return sigV4{}, false
			}
			a.accessKey, a.date, a.region, a.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	return a, a.accessKey != "" && a.signature != "" && len(a.signedHeaders) > 0
}

// authenticate checks the request's SigV4 signature against the configured credentials by
// signing a copy of the request (the headers it says it signed, the same time, region and
// signing name) and comparing signatures.
func (s *Sim) authenticate(r *http.Request, body []byte, svc service) *apiError {
	return authenticate(r, body, svc, s.akid, s.secret)
}

// authenticate checks a SigV4 signature against one access key and secret.
func authenticate(r *http.Request, body []byte, svc service, akid, secret string) *apiError {
	missing, badKey, badSig := "MissingAuthenticationToken", "InvalidClientTokenId", "SignatureDoesNotMatch"
	if svc == svcECS {
		missing, badKey, badSig = "MissingAuthenticationTokenException", "UnrecognizedClientException", "InvalidSignatureException"
	}
	authErr := func(code, msg string) *apiError {
		return &apiError{http.StatusForbidden, code, code, "Sender", msg}
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return authErr(missing, "Request is missing Authentication Token")
	}
	a, ok := parseSigV4(h)
	if !ok {
		return authErr(missing, "Authorization header is not a valid AWS4-HMAC-SHA256 signature")
	}
	if a.accessKey != akid {
		return authErr(badKey, "The security token included in the request is invalid.")
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return authErr(badSig, "X-Amz-Date is missing or malformed")
	}

	cp, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return authErr(badSig, fmt.Sprintf("rebuild request for signing: %v", err))
	}
	cp.Host = r.Host
	cp.ContentLength = int64(len(body))
	for _, name := range a.signedHeaders {
		if name == "host" || name == "content-length" {
			continue
		}
		if vals := r.Header.Values(name); len(vals) > 0 {
			cp.Header[http.CanonicalHeaderKey(name)] = vals
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{
		AccessKeyID:     akid,
		SecretAccessKey: secret,
		SessionToken:    r.Header.Get("X-Amz-Security-Token"),
	}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, cp, hex.EncodeToString(sum[:]), a.service, a.region, signingTime); err != nil {
		return authErr(badSig, fmt.Sprintf("sign request copy: %v", err))
	}
	want, ok := parseSigV4(cp.Header.Get("Authorization"))
	if !ok || subtle.ConstantTimeCompare([]byte(want.signature), []byte(a.signature)) != 1 {
		return authErr(badSig, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return nil
}
