package collector

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/cygni/usage/series"
)

// Tags that map an ECS service to a project and deployment.
const (
	TagProject    = "cygni:project"
	TagDeployment = "cygni:deployment"
)

// CloudWatch namespaces read by the collector.
const (
	nsContainerInsights = "ECS/ContainerInsights"
	nsALB               = "AWS/ApplicationELB"
)

// conversion turns a CloudWatch statistic of one period into the stored per-period amount.
type conversion uint8

const (
	convCPU      conversion = iota // CPU units Sum → vCPU-seconds: Sum × 60 / 1024
	convMemory                     // MiB Sum → GB-hours: Sum / 1024 / 60
	convTasks                      // RunningTaskCount Average → task-minutes: Average × period / 60
	convBytes                      // bytes/s Sum → bytes: Sum × 60
	convIdentity                   // RequestCount Sum
)

// apply converts v, a statistic over a period of the given seconds. The operation order is the
// one of the unit rules in NOTES.md, so per-minute values are bit-identical to a reference that
// applies the same rules.
func (k conversion) apply(v float64, period int64) float64 {
	switch k {
	case convCPU:
		return v * 60 / 1024
	case convMemory:
		return v / 1024 / 60
	case convTasks:
		if period == 60 {
			return v
		}
		return v * float64(period) / 60
	case convBytes:
		return v * 60
	}
	return v
}

// containerInsights lists the Container Insights metrics and the series each one fills.
// The right-sizing metrics (what the tasks used, not what they reserved) are priced by nothing and
// feed only recommendations, so they are read at Options.RightSizingInterval, still at 1-minute
// periods: the same samples, fewer GetMetricData metrics. Everything else (reserved CPU and
// memory, running tasks, egress, requests) is read every cycle, the seed's 5-minute collection:
// budgets, alerts and invoices see it within one interval, and the running-task counts the
// console and the API show are as fresh as the money.
var containerInsights = []struct {
	metric, stat, series string
	conv                 conversion
	rightSizing          bool
}{
	{"CpuReserved", "Sum", series.CPUSeconds, convCPU, false},
	{"CpuUtilized", "Sum", series.CPUUsedSeconds, convCPU, true},
	{"MemoryReserved", "Sum", series.MemoryGBHours, convMemory, false},
	{"MemoryUtilized", "Sum", series.MemoryUsedGBHours, convMemory, true},
	{"RunningTaskCount", "Average", series.RunningTasks, convTasks, false},
	{"NetworkTxBytes", "Sum", series.EgressBytes, convBytes, false},
}

// metricSet selects the metrics of a collection pass.
type metricSet uint8

const (
	billedMetrics      metricSet = 1 << iota // every cycle: reserved CPU and memory, running tasks, egress, requests
	rightSizingMetrics                       // CpuUtilized, MemoryUtilized
	allMetrics         = billedMetrics | rightSizingMetrics
)

func (ms metricSet) has(rightSizing bool) bool {
	if rightSizing {
		return ms&rightSizingMetrics != 0
	}
	return ms&billedMetrics != 0
}

// target is one stored series. It lives across cycles so that its series reference stays
// cached; within a chunk exactly one batch owns it.
type target struct {
	lset labels.Labels
	hash uint64
	ref  storage.SeriesRef
}

// metricQuery is one CloudWatch metric feeding one target.
type metricQuery struct {
	t      *target
	tgt    int // the index of the Options.Targets whose CloudWatch answers it
	metric cwtypes.Metric
	stat   string
	conv   conversion
	// clock marks the query whose datapoints tell how far CloudWatch has published
	// (CpuReserved: present every minute a task runs).
	clock bool
}

// Discovered is one ECS service as discovery saw it. Project and Deployment are "" for an
// untagged service.
type Discovered struct {
	Cluster, Service    string
	Project, Deployment string
}

// fleetPlan is the outcome of discovery: the queries, packed into batches so that every query of
// a target is in the same batch (its contributions are summed before the correction rule).
type fleetPlan struct {
	series  []string // the series the queries fill
	queries int
	batches [][]metricQuery
	running int64 // tasks ECS reported running at discovery, over the fleet
}

// service is one discovered ECS service.
type service struct {
	tgt                 int // index in Options.Targets
	arn, cluster, name  string
	project, deployment string
	targetGroups        []string // TargetGroup dimension values, "targetgroup/<name>/<id>"
	running             int32    // ECS runningCount at discovery
}

// discover returns the ECS services, from the cache while it is younger than
// DiscoveryInterval, and builds the queries of the selected metrics for every service.
func (c *Collector) discover(ctx context.Context, ms metricSet) (*fleetPlan, error) {
	if c.svcs == nil || c.opts.Now().Sub(c.discovered) >= c.opts.DiscoveryInterval {
		var svcs []service
		for i := range c.opts.Targets {
			ts, err := c.listServices(ctx, i)
			if err != nil {
				if len(c.opts.Targets) > 1 {
					err = fmt.Errorf("target %s: %w", c.opts.Targets[i].Name, err)
				}
				return nil, err
			}
			svcs = append(svcs, ts...)
		}
		if c.opts.Shards > 1 {
			mine := svcs[:0]
			for _, s := range svcs {
				if ShardOf(s.cluster, s.name, c.opts.Shards) == c.opts.Shard {
					mine = append(mine, s)
				}
			}
			svcs = mine
		}
		c.svcs, c.discovered = svcs, c.opts.Now()
		c.announce(ctx, svcs)
	}
	svcs := c.svcs
	if err := c.resolveLoadBalancers(ctx, svcs); err != nil {
		return nil, err
	}
	return c.buildPlan(svcs, ms), nil
}

// announce hands a fresh discovery to Options.OnDiscover.
func (c *Collector) announce(ctx context.Context, svcs []service) {
	if c.opts.OnDiscover != nil {
		found := make([]Discovered, 0, len(svcs))
		for _, s := range svcs {
			found = append(found, Discovered{Cluster: s.cluster, Service: s.name, Project: s.project, Deployment: s.deployment})
		}
		if err := c.opts.OnDiscover(ctx, found); err != nil {
			c.logger.Warn("record discovered services; collection goes on", "err", err)
		}
	}
}

// buildPlan packs the queries of the selected metrics of every service into batches.
func (c *Collector) buildPlan(svcs []service, ms metricSet) *fleetPlan {
	untagged := 0
	byTarget := map[*target][]metricQuery{}
	var order []*target
	add := func(t *target, q metricQuery) {
		if _, ok := byTarget[t]; !ok {
			order = append(order, t)
		}
		q.t = t
		byTarget[t] = append(byTarget[t], q)
	}
	for _, s := range svcs {
		if s.project == "" {
			untagged++
			if !c.untagged[s.arn] {
				c.untagged[s.arn] = true
				c.logger.Warn("service has no cygni:project tag; its usage is kept without a project label",
					"service", s.name, "cluster", s.cluster, "arn", s.arn)
			}
		}
		dims := []cwtypes.Dimension{
			{Name: aws.String("ClusterName"), Value: aws.String(s.cluster)},
			{Name: aws.String("ServiceName"), Value: aws.String(s.name)},
		}
		for _, m := range containerInsights {
			if !ms.has(m.rightSizing) {
				continue
			}
			add(c.target(m.series, s), metricQuery{
				metric: cwtypes.Metric{Namespace: aws.String(nsContainerInsights), MetricName: aws.String(m.metric), Dimensions: dims},
				stat:   m.stat, conv: m.conv, clock: m.metric == "CpuReserved", tgt: s.tgt,
			})
		}
		for _, tg := range s.targetGroups {
			if !ms.has(false) {
				break
			}
			lb, ok := c.lbByTG[lbKey(s.tgt, tg)]
			if !ok {
				c.logger.Debug("target group has no RequestCount metric yet; skipped this cycle", "target_group", tg, "service", s.name)
				continue
			}
			add(c.target(series.Requests, s), metricQuery{
				metric: cwtypes.Metric{Namespace: aws.String(nsALB), MetricName: aws.String("RequestCount"), Dimensions: []cwtypes.Dimension{
					{Name: aws.String("TargetGroup"), Value: aws.String(tg)},
					{Name: aws.String("LoadBalancer"), Value: aws.String(lb)},
				}},
				stat: "Sum", conv: convIdentity, tgt: s.tgt,
			})
		}
	}
	c.m.untagged.Set(float64(untagged))
	c.m.services.Set(float64(len(svcs)))

	plan := &fleetPlan{}
	for _, m := range containerInsights {
		if ms.has(m.rightSizing) {
			plan.series = append(plan.series, m.series)
		}
	}
	if ms.has(false) {
		plan.series = append(plan.series, series.Requests)
	}
	for _, s := range svcs {
		plan.running += int64(s.running)
	}
	var cur []metricQuery
	for _, t := range order {
		qs := byTarget[t]
		if len(cur) > 0 && (len(cur)+len(qs) > c.opts.MaxQueriesPerCall || cur[0].tgt != qs[0].tgt) {
			plan.batches = append(plan.batches, cur)
			cur = nil
		}
		cur = append(cur, qs...)
		plan.queries += len(qs)
	}
	if len(cur) > 0 {
		plan.batches = append(plan.batches, cur)
	}
	return plan
}

// target returns the cached target for a series of a service, creating it on first sight.
func (c *Collector) target(name string, s service) *target {
	b := labels.NewScratchBuilder(6)
	b.Add(labels.MetricName, name)
	b.Add(series.LabelCluster, s.cluster)
	b.Add(series.LabelDeployment, s.deployment)
	if s.project != "" {
		b.Add(series.LabelProject, s.project)
	}
	b.Add(series.LabelRegion, c.opts.Targets[s.tgt].Region)
	if acc := c.opts.Targets[s.tgt].Account; acc != "" {
		b.Add(series.LabelAccount, acc)
	}
	b.Sort()
	lset := b.Labels()
	key := lset.String()
	if t, ok := c.series[key]; ok {
		return t
	}
	t := &target{lset: lset, hash: lset.Hash()}
	c.series[key] = t
	return t
}

// listServices pages through ListClusters, ListServices and DescribeServices (≤10 per call),
// each call under the collector's back-off.
func (c *Collector) listServices(ctx context.Context, tgt int) ([]service, error) {
	api := c.opts.Targets[tgt].ECS
	var clusters []string
	for tok := (*string)(nil); ; {
		out, err := withRetry(ctx, c, "ListClusters", func() (*ecs.ListClustersOutput, error) {
			out, err := api.ListClusters(ctx, &ecs.ListClustersInput{NextToken: tok})
			c.m.call("ecs", "ListClusters", err)
			return out, err
		})
		if err != nil {
			return nil, fmt.Errorf("list ECS clusters: %w", err)
		}
		clusters = append(clusters, out.ClusterArns...)
		if tok = out.NextToken; aws.ToString(tok) == "" {
			break
		}
	}
	var svcs []service
	for _, cl := range clusters {
		var arns []string
		for tok := (*string)(nil); ; {
			out, err := withRetry(ctx, c, "ListServices", func() (*ecs.ListServicesOutput, error) {
				out, err := api.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(cl), MaxResults: aws.Int32(100), NextToken: tok})
				c.m.call("ecs", "ListServices", err)
				return out, err
			})
			if err != nil {
				return nil, fmt.Errorf("list ECS services of %s: %w", cl, err)
			}
			arns = append(arns, out.ServiceArns...)
			if tok = out.NextToken; aws.ToString(tok) == "" {
				break
			}
		}
		for i := 0; i < len(arns); i += 10 {
			out, err := withRetry(ctx, c, "DescribeServices", func() (*ecs.DescribeServicesOutput, error) {
				out, err := api.DescribeServices(ctx, &ecs.DescribeServicesInput{
					Cluster:  aws.String(cl),
					Services: arns[i:min(i+10, len(arns))],
					Include:  []ecstypes.ServiceField{ecstypes.ServiceFieldTags},
				})
				c.m.call("ecs", "DescribeServices", err)
				return out, err
			})
			if err != nil {
				return nil, fmt.Errorf("describe ECS services of %s: %w", cl, err)
			}
			for _, f := range out.Failures {
				c.logger.Warn("DescribeServices reported a failure; service skipped this cycle",
					"arn", aws.ToString(f.Arn), "reason", aws.ToString(f.Reason))
			}
			for _, d := range out.Services {
				s := toService(d, cl)
				s.tgt = tgt
				svcs = append(svcs, s)
			}
		}
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].arn < svcs[j].arn }) // one target: ARNs share its account and region
	return svcs, nil
}

func toService(d ecstypes.Service, clusterARN string) service {
	s := service{arn: aws.ToString(d.ServiceArn), name: aws.ToString(d.ServiceName), running: d.RunningCount}
	cl := aws.ToString(d.ClusterArn)
	if cl == "" {
		cl = clusterARN
	}
	s.cluster = cl[strings.LastIndexByte(cl, '/')+1:]
	for _, t := range d.Tags {
		switch aws.ToString(t.Key) {
		case TagProject:
			s.project = aws.ToString(t.Value)
		case TagDeployment:
			s.deployment = aws.ToString(t.Value)
		}
	}
	if s.project == "" || s.deployment == "" {
		s.deployment = s.name
	}
	for _, lb := range d.LoadBalancers {
		arn := aws.ToString(lb.TargetGroupArn)
		if i := strings.Index(arn, ":targetgroup/"); i >= 0 {
			s.targetGroups = append(s.targetGroups, arn[i+1:])
		}
	}
	return s
}

func lbKey(tgt int, tg string) string { return fmt.Sprint(tgt) + "/" + tg }

// resolveLoadBalancers fills the TargetGroup → LoadBalancer cache from ListMetrics when a
// target group is not in it. A miss re-lists at most once per interval.
func (c *Collector) resolveLoadBalancers(ctx context.Context, svcs []service) error {
	missing := map[int]bool{}
	for _, s := range svcs {
		for _, tg := range s.targetGroups {
			if _, ok := c.lbByTG[lbKey(s.tgt, tg)]; !ok {
				missing[s.tgt] = true
			}
		}
	}
	if len(missing) == 0 || (!c.lbListed.IsZero() && c.opts.Now().Sub(c.lbListed) < c.opts.Interval) {
		return nil
	}
	for tgt := range c.opts.Targets {
		if !missing[tgt] {
			continue
		}
		if err := c.listLoadBalancers(ctx, tgt); err != nil {
			return err
		}
	}
	c.lbListed = c.opts.Now()
	return nil
}

// listLoadBalancers reads the TargetGroup → LoadBalancer dimensions of one target's
// RequestCount metrics with ListMetrics.
func (c *Collector) listLoadBalancers(ctx context.Context, tgt int) error {
	found := map[string]string{}
	for tok := (*string)(nil); ; {
		out, err := withRetry(ctx, c, "ListMetrics", func() (*cloudwatch.ListMetricsOutput, error) {
			out, err := c.opts.Targets[tgt].CloudWatch.ListMetrics(ctx, &cloudwatch.ListMetricsInput{
				Namespace:  aws.String(nsALB),
				MetricName: aws.String("RequestCount"),
				Dimensions: []cwtypes.DimensionFilter{{Name: aws.String("TargetGroup")}},
				NextToken:  tok,
			})
			c.m.call("cloudwatch", "ListMetrics", err)
			return out, err
		})
		if err != nil {
			return fmt.Errorf("list ALB RequestCount metrics: %w", err)
		}
		for _, m := range out.Metrics {
			if len(m.Dimensions) != 2 {
				continue // per-AZ and per-LB variants
			}
			var tg, lb string
			for _, d := range m.Dimensions {
				switch aws.ToString(d.Name) {
				case "TargetGroup":
					tg = aws.ToString(d.Value)
				case "LoadBalancer":
					lb = aws.ToString(d.Value)
				}
			}
			if tg != "" && lb != "" {
				found[tg] = lb
			}
		}
		if tok = out.NextToken; aws.ToString(tok) == "" {
			break
		}
	}
	for tg, lb := range found {
		c.lbByTG[lbKey(tgt, tg)] = lb
	}
	return nil
}
