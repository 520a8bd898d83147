// Package simaws is the built-in simulated AWS endpoint: a deterministic fleet of ECS/Fargate
// services whose CloudWatch metrics (Container Insights and ALB RequestCount) are served over the
// exact wire protocols that the real aws-sdk-go-v2 clients use — Smithy RPC v2 CBOR for
// CloudWatch, awsJson1_1 for ECS — so the product's collector runs against it unchanged through
// BaseEndpoint or AWS_ENDPOINT_URL.
//
// Invariants:
//   - Everything derives from Options.Seed. The value of any metric for any service and minute is
//     a pure function of (seed, service index, unix minute): no history is stored, and each
//     datapoint costs O(1).
//   - Data exists only for minutes that have ended by Options.Now (plus Faults.LateBy).
//   - Truth and the CloudWatch handler use the same per-minute functions, and every per-minute
//     Sum is an integer, so 1-minute sums read through the API equal Truth exactly.
//   - Fault and late-data settings change what the endpoint answers, never Truth. Spikes
//     (AddSpike, /_sim/spikes) change the fleet's usage: Truth includes them.
package simaws

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Series names, the product's stored series (DESIGN.md), accepted by Truth and ProjectTruth.
const (
	SeriesCPUSeconds        = "cygni_cpu_seconds"
	SeriesCPUUsedSeconds    = "cygni_cpu_used_seconds"
	SeriesMemoryGBHours     = "cygni_memory_gb_hours"
	SeriesMemoryUsedGBHours = "cygni_memory_used_gb_hours"
	SeriesRunningTasks      = "cygni_running_tasks"
	SeriesEgressBytes       = "cygni_egress_bytes"
	SeriesRequests          = "cygni_requests"
)

const (
	defaultAccountID    = "123456789012"
	nsContainerInsights = "ECS/ContainerInsights"
	nsALB               = "AWS/ApplicationELB"
)

// Options configures the simulated fleet and endpoint. Zero values take the documented defaults.
type Options struct {
	Seed               int64  // default 1
	Region             string // default "us-east-1"
	AccountID          string // the account in the ARNs; default "123456789012"
	Projects           int    // tagged projects "proj_001".., spread round-robin over Clusters; default 4
	Clusters           int    // "cygni-prod", "cygni-staging", then "cygni-c3"...; default 2
	ServicesPerProject int    // deployments "web", "worker", then "svc3"...; default 2
	Untagged           int    // services without cygni tags; default 1, negative for none
	// DeploymentNames, if set, name the deployments (the cygni:deployment tag values) in place
	// of "web", "worker", "svc3"...: tests give them hostile values, as customers' tags may be.
	DeploymentNames []string
	// Oversized names services ("proj_001-web") that reserve a large task (2 vCPU, 8 GiB) and
	// use only 3-12 % of its CPU and 8-20 % of its memory: right-sizing candidates.
	Oversized []string

	// AccessKeyID and SecretAccessKey are the credentials the endpoint accepts;
	// default "AKIDSIMULATED" / "simulated-secret".
	AccessKeyID, SecretAccessKey string

	// Now is the clock; default time.Now. Data exists only for minutes that have ended by Now().
	Now func() time.Time
}

// Service is one simulated ECS service on Fargate.
type Service struct {
	Cluster, Name, ARN  string
	Project, Deployment string // from the tags cygni:project / cygni:deployment; "" when untagged
	TaskCPU             int    // Fargate CPU units (256 .. 4096)
	TaskMemoryMiB       int    // a memory size valid for TaskCPU on Fargate
	// TargetGroupARN is the ALB target group in front of the service and LoadBalancer the value
	// of the LoadBalancer dimension ("app/<name>/<hex>"); both empty for services without one.
	TargetGroupARN, LoadBalancer string
}

// Faults injects errors and late data. Counters count down as calls consume them.
type Faults struct {
	ThrottleCloudWatch int // the next N CloudWatch calls answer 400 Throttling
	FailCloudWatch     int // the next N CloudWatch calls answer 500 InternalFailure
	ThrottleECS        int // the next N ECS calls answer 400 ThrottlingException
	FailECS            int // the next N ECS calls answer 500 ServerException
	// LateBy delays visibility: minute m is served only once Now() >= m+1min+LateBy.
	LateBy time.Duration
	// Partial halves every value of the minutes that ended less than Partial before Now(), so a
	// later read sees the full value.
	Partial time.Duration
}

// Sim is the simulated AWS endpoint. Its methods are safe for concurrent use.
type Sim struct {
	seed    uint64
	region  string
	account string
	akid    string
	secret  string
	now     func() time.Time

	clusters []string
	services []Service
	svc      []svcModel
	byKey    map[string]metricRef // CloudWatch metric identity -> service and metric
	listed   []listedMetric       // ListMetrics order

	mu     sync.Mutex
	faults Faults
	spikes atomic.Pointer[[]Spike] // replaced whole under mu; read without it on every minute
	calls  map[string]int
	seq    uint64 // requests served, for request ids
}

// svcModel holds the per-service parameters of the data model.
type svcModel struct {
	seed      uint64
	baseTasks int64
	stretchy  bool // has whole stretches of hours with zero tasks
	oversized bool // uses a small fraction of what it reserves (Options.Oversized)
	hasTG     bool
	cpu, mem  int64
	tgSuffix  string // "targetgroup/<name>/<hex>"
	createdAt time.Time
}

// fargateMemory lists the valid memory sizes (MiB) for each Fargate CPU size.
func fargateMemory(cpu int) []int {
	var out []int
	switch cpu {
	case 256:
		return []int{512, 1024, 2048}
	case 512:
		for m := 1024; m <= 4096; m += 1024 {
			out = append(out, m)
		}
	case 1024:
		for m := 2048; m <= 8192; m += 1024 {
			out = append(out, m)
		}
	case 2048:
		for m := 4096; m <= 16384; m += 1024 {
			out = append(out, m)
		}
	default: // 4096
		for m := 8192; m <= 30720; m += 1024 {
			out = append(out, m)
		}
	}
	return out
}

// New builds the simulated fleet described by opts. It starts no goroutines.
func New(opts Options) *Sim {
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.AccountID == "" {
		opts.AccountID = defaultAccountID
	}
	if opts.Projects <= 0 {
		opts.Projects = 4
	}
	if opts.Clusters <= 0 {
		opts.Clusters = 2
	}
	if opts.ServicesPerProject <= 0 {
		opts.ServicesPerProject = 2
	}
	if opts.Untagged < 0 {
		opts.Untagged = 0
	} else if opts.Untagged == 0 {
		opts.Untagged = 1
	}
	if opts.AccessKeyID == "" {
		opts.AccessKeyID = "AKIDSIMULATED"
	}
	if opts.SecretAccessKey == "" {
		opts.SecretAccessKey = "simulated-secret"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sim{
		seed:    mix(uint64(opts.Seed)),
		region:  opts.Region,
		account: opts.AccountID,
		akid:    opts.AccessKeyID,
		secret:  opts.SecretAccessKey,
		now:     opts.Now,
		byKey:   make(map[string]metricRef),
		calls:   make(map[string]int),
	}
	for c := range opts.Clusters {
		switch c {
		case 0:
			s.clusters = append(s.clusters, "cygni-prod")
		case 1:
			s.clusters = append(s.clusters, "cygni-staging")
		default:
			s.clusters = append(s.clusters, fmt.Sprintf("cygni-c%d", c+1))
		}
	}
	for p := 1; p <= opts.Projects; p++ {
		project := fmt.Sprintf("proj_%03d", p)
		cluster := s.clusters[(p-1)%len(s.clusters)]
		for d := range opts.ServicesPerProject {
			var dep string
			switch d {
			case 0:
				dep = "web"
			case 1:
				dep = "worker"
			default:
				dep = fmt.Sprintf("svc%d", d+1)
			}
			if d < len(opts.DeploymentNames) {
				dep = opts.DeploymentNames[d]
			}
			s.addService(cluster, project+"-"+dep, project, dep, d != 1)
		}
	}
	for u := 1; u <= opts.Untagged; u++ {
		cluster := s.clusters[(u-1)%len(s.clusters)]
		s.addService(cluster, fmt.Sprintf("legacy-untagged-%d", u), "", "", u == 1)
	}
	// Exactly one service (the first worker, else the first service) has long stretches at zero.
	stretchy := 0
	if len(s.services) > 1 {
		stretchy = 1
	}
	s.svc[stretchy].stretchy = true
	for i, svc := range s.services {
		if slices.Contains(opts.Oversized, svc.Name) {
			s.services[i].TaskCPU, s.services[i].TaskMemoryMiB = 2048, 8192
			s.svc[i].cpu, s.svc[i].mem, s.svc[i].oversized = 2048, 8192, true
		}
	}
	s.indexMetrics()
	return s
}

func (s *Sim) addService(cluster, name, project, dep string, withTG bool) {
	i := len(s.services)
	seed := mix(s.seed + uint64(i) + 1)
	cpus := []int{256, 512, 1024, 2048, 4096}
	cpu := cpus[mix(seed^1)%uint64(len(cpus))]
	mems := fargateMemory(cpu)
	mem := mems[mix(seed^2)%uint64(len(mems))]
	svc := Service{
		Cluster:       cluster,
		Name:          name,
		ARN:           fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", s.region, s.account, cluster, name),
		Project:       project,
		Deployment:    dep,
		TaskCPU:       cpu,
		TaskMemoryMiB: mem,
	}
	m := svcModel{
		seed:      seed,
		baseTasks: 1 + int64(mix(seed^3)%4),
		hasTG:     withTG,
		cpu:       int64(cpu),
		mem:       int64(mem),
		createdAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour),
	}
	if withTG {
		tgName := "tg-" + name
		if len(tgName) > 32 {
			tgName = tgName[:32]
		}
		m.tgSuffix = fmt.Sprintf("targetgroup/%s/%016x", tgName, mix(seed^4))
		svc.TargetGroupARN = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:%s", s.region, s.account, m.tgSuffix)
		svc.LoadBalancer = fmt.Sprintf("app/%s-alb/%016x", cluster, mix(s.seed^uint64(len(cluster))^0x5a5a))
	}
	s.services = append(s.services, svc)
	s.svc = append(s.svc, m)
}

// Services returns the simulated fleet in a stable order: tagged services project by project,
// then the untagged ones.
func (s *Sim) Services() []Service {
	return append([]Service(nil), s.services...)
}

// SetFaults replaces the fault and delay settings.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Calls returns the number of calls served per operation name ("GetMetricData",
// "ListServices", ...), failed ones included.
func (s *Sim) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

func (s *Sim) currentFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Handler serves ECS (POST / with X-Amz-Target), CloudWatch
// (POST /service/GraniteServiceVersion20100801/operation/<Op>) and the unauthenticated control
// routes under /_sim/.
func (s *Sim) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}
