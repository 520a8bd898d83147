package simaws

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Account is one simulated AWS account in one region: the role a collector assumes in it and
// the fleet it runs there. The fleet's Sim must be built with the account's AccountID and
// Region; its AccessKeyID and SecretAccessKey are the credentials AssumeRole hands out for the
// role (the same for every region of the account).
type Account struct {
	ID       string // 12 digits
	RoleName string // the role: arn:aws:iam::<ID>:role/<RoleName>
	Sim      *Sim
}

// OrgOptions configures an organisation of simulated accounts behind one endpoint.
type OrgOptions struct {
	// AccessKeyID and SecretAccessKey are the caller's own (base) credentials, the only ones
	// STS AssumeRole accepts; default "AKIDSIMULATED" / "simulated-secret".
	AccessKeyID, SecretAccessKey string
	Accounts                     []Account
	// Now stamps the credentials' expiry (one hour, or DurationSeconds, later). The SDK compares it
	// with the wall clock, so leave it at the default, time.Now, unless that is what is tested.
	Now func() time.Time
}

// Org serves several simulated accounts and regions on one endpoint, as AWS's global STS and
// regional endpoints would: STS (Query protocol, POST / with Action=AssumeRole, XML answers)
// hands out an account's credentials for its role; an ECS or CloudWatch request is served by the
// fleet of the account whose credentials signed it, in the region of its SigV4 scope.
type Org struct {
	opts OrgOptions
	mu   sync.Mutex
	// calls counts AssumeRole calls by role ARN.
	calls map[string]int
}

// NewOrg builds the organisation. It starts no goroutines.
func NewOrg(opts OrgOptions) *Org {
	if opts.AccessKeyID == "" {
		opts.AccessKeyID = "AKIDSIMULATED"
	}
	if opts.SecretAccessKey == "" {
		opts.SecretAccessKey = "simulated-secret"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Org{opts: opts, calls: map[string]int{}}
}

// AssumeRoleCalls returns how many AssumeRole calls were answered for roleARN.
func (o *Org) AssumeRoleCalls(roleARN string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[roleARN]
}

// RoleARN is the ARN of an account's role.
func (a Account) RoleARN() string { return "arn:aws:iam::" + a.ID + ":role/" + a.RoleName }

// Handler serves STS, and ECS and CloudWatch of every account and region.
func (o *Org) Handler() http.Handler { return http.HandlerFunc(o.serveHTTP) }

func (o *Org) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" && r.Header.Get("X-Amz-Target") == "" &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		o.serveSTS(w, r)
		return
	}
	a, ok := parseSigV4(r.Header.Get("Authorization"))
	if ok {
		for _, acc := range o.opts.Accounts {
			if acc.Sim.akid == a.accessKey && acc.Sim.region == a.region {
				acc.Sim.serveHTTP(w, r)
				return
			}
		}
	}
	// Nobody's credentials in that region: the first fleet answers with AWS's own error.
	if len(o.opts.Accounts) > 0 {
		o.opts.Accounts[0].Sim.serveHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

// STS' XML documents (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumeRoleResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleResponse"`
	Result  struct {
		Credentials     stsCredentials `xml:"Credentials"`
		AssumedRoleUser struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
	} `xml:"AssumeRoleResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type stsErrorResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func (o *Org) stsError(w http.ResponseWriter, status int, code, msg string) {
	var e stsErrorResponse
	e.Error.Type, e.Error.Code, e.Error.Message = "Sender", code, msg
	e.RequestID = "00000000-0000-4000-8000-000000000000"
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(e)
}

func (o *Org) serveSTS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		o.stsError(w, http.StatusMethodNotAllowed, "InvalidAction", "only POST is served")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		o.stsError(w, http.StatusBadRequest, "MalformedInput", err.Error())
		return
	}
	if e := authenticate(r, body, svcCloudWatch, o.opts.AccessKeyID, o.opts.SecretAccessKey); e != nil {
		o.stsError(w, http.StatusForbidden, e.code, e.msg)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		o.stsError(w, http.StatusBadRequest, "MalformedInput", err.Error())
		return
	}
	if a := form.Get("Action"); a != "AssumeRole" {
		o.stsError(w, http.StatusBadRequest, "InvalidAction", fmt.Sprintf("Could not find operation %q for version %s", a, form.Get("Version")))
		return
	}
	roleARN, session := form.Get("RoleArn"), form.Get("RoleSessionName")
	if session == "" {
		o.stsError(w, http.StatusBadRequest, "ValidationError", "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
		return
	}
	duration := 3600
	if d := form.Get("DurationSeconds"); d != "" {
		if duration, err = strconv.Atoi(d); err != nil || duration < 900 || duration > 43200 {
			o.stsError(w, http.StatusBadRequest, "ValidationError", "DurationSeconds must be 900..43200")
			return
		}
	}
	var acc *Account
	for i := range o.opts.Accounts {
		if o.opts.Accounts[i].RoleARN() == roleARN {
			acc = &o.opts.Accounts[i]
			break
		}
	}
	if acc == nil {
		o.stsError(w, http.StatusForbidden, "AccessDenied",
			fmt.Sprintf("User: arn:aws:iam::%s:user/cygni is not authorized to perform: sts:AssumeRole on resource: %s", defaultAccountID, roleARN))
		return
	}
	o.mu.Lock()
	o.calls[roleARN]++
	o.mu.Unlock()
	var out assumeRoleResponse
	out.Result.Credentials = stsCredentials{
		AccessKeyID:     acc.Sim.akid,
		SecretAccessKey: acc.Sim.secret,
		SessionToken:    "simulated-session-" + acc.ID,
		Expiration:      o.opts.Now().UTC().Add(time.Duration(duration) * time.Second).Format(time.RFC3339),
	}
	out.Result.AssumedRoleUser.Arn = "arn:aws:sts::" + acc.ID + ":assumed-role/" + acc.RoleName + "/" + session
	out.Result.AssumedRoleUser.AssumedRoleID = "AROASIMULATED" + acc.ID + ":" + session
	out.RequestID = "00000000-0000-4000-8000-000000000001"
	w.Header().Set("Content-Type", "text/xml")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(out)
}
