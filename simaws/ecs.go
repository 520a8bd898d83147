package simaws

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// ECS wire shapes (awsJson1_1, camelCase members as in the SDK's schemas).

type ecsTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type ecsLoadBalancer struct {
	TargetGroupArn string `json:"targetGroupArn"`
	ContainerName  string `json:"containerName"`
	ContainerPort  int    `json:"containerPort"`
}

type ecsService struct {
	ServiceArn         string            `json:"serviceArn"`
	ServiceName        string            `json:"serviceName"`
	ClusterArn         string            `json:"clusterArn"`
	LoadBalancers      []ecsLoadBalancer `json:"loadBalancers"`
	Status             string            `json:"status"`
	DesiredCount       int64             `json:"desiredCount"`
	RunningCount       int64             `json:"runningCount"`
	PendingCount       int64             `json:"pendingCount"`
	LaunchType         string            `json:"launchType"`
	PlatformVersion    string            `json:"platformVersion"`
	PlatformFamily     string            `json:"platformFamily"`
	TaskDefinition     string            `json:"taskDefinition"`
	CreatedAt          float64           `json:"createdAt"`
	SchedulingStrategy string            `json:"schedulingStrategy"`
	Tags               []ecsTag          `json:"tags,omitempty"`
}

type ecsFailure struct {
	Arn    string `json:"arn"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

type ecsRequest struct {
	Cluster        string   `json:"cluster"`
	NextToken      string   `json:"nextToken"`
	MaxResults     *int     `json:"maxResults"`
	Services       []string `json:"services"`
	Include        []string `json:"include"`
	TaskDefinition string   `json:"taskDefinition"`
}

func ecsInvalidParameter(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterException", "", "Sender", msg}
}

// serveECS runs one ECS operation on a JSON request body.
func (s *Sim) serveECS(op string, body []byte) ([]byte, *apiError) {
	var req ecsRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, &apiError{http.StatusBadRequest, "SerializationException", "", "Sender",
				fmt.Sprintf("decode %s body: %v", op, err)}
		}
	}
	var out any
	var apiErr *apiError
	switch op {
	case "ListClusters":
		out, apiErr = s.ecsListClusters(req)
	case "ListServices":
		out, apiErr = s.ecsListServices(req)
	case "DescribeServices":
		out, apiErr = s.ecsDescribeServices(req)
	case "DescribeTaskDefinition":
		out, apiErr = s.ecsDescribeTaskDefinition(req)
	default:
		return nil, &apiError{http.StatusBadRequest, "UnknownOperationException", "", "Sender",
			fmt.Sprintf("operation %q is not supported by the simulated endpoint", op)}
	}
	if apiErr != nil {
		return nil, apiErr
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, &apiError{http.StatusInternalServerError, "ServerException", "", "Receiver", fmt.Sprintf("encode %s: %v", op, err)}
	}
	return b, nil
}

func (s *Sim) clusterArn(name string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", s.region, s.account, name)
}

// resolveCluster accepts a cluster name or ARN; the empty string means "default".
func (s *Sim) resolveCluster(c string) (string, *apiError) {
	if c == "" {
		c = "default"
	}
	name := c
	if strings.HasPrefix(c, "arn:") {
		_, name, _ = strings.Cut(c, ":cluster/")
	}
	if slices.Contains(s.clusters, name) {
		return name, nil
	}
	return "", &apiError{http.StatusBadRequest, "ClusterNotFoundException", "", "Sender", "Cluster not found."}
}

// page slices items by an opaque offset token and a page size.
func page(items []string, token string, maxResults *int, def int) ([]string, string, *apiError) {
	n := def
	if maxResults != nil {
		n = *maxResults
		if n < 1 || n > 100 {
			return nil, "", ecsInvalidParameter("maxResults must be between 1 and 100.")
		}
	}
	off := 0
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		o, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), "ecs1:"))
		if err != nil || err2 != nil || o < 0 || o > len(items) {
			return nil, "", ecsInvalidParameter("Invalid nextToken.")
		}
		off = o
	}
	end := min(off+n, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte("ecs1:" + strconv.Itoa(end)))
	}
	return items[off:end], next, nil
}

func (s *Sim) ecsListClusters(req ecsRequest) (any, *apiError) {
	arns := make([]string, len(s.clusters))
	for i, c := range s.clusters {
		arns[i] = s.clusterArn(c)
	}
	p, next, apiErr := page(arns, req.NextToken, req.MaxResults, 100)
	if apiErr != nil {
		return nil, apiErr
	}
	return struct {
		ClusterArns []string `json:"clusterArns"`
		NextToken   string   `json:"nextToken,omitempty"`
	}{p, next}, nil
}

func (s *Sim) ecsListServices(req ecsRequest) (any, *apiError) {
	cluster, apiErr := s.resolveCluster(req.Cluster)
	if apiErr != nil {
		return nil, apiErr
	}
	var arns []string
	for _, svc := range s.services {
		if svc.Cluster == cluster {
			arns = append(arns, svc.ARN)
		}
	}
	p, next, apiErr := page(arns, req.NextToken, req.MaxResults, 10)
	if apiErr != nil {
		return nil, apiErr
	}
	if p == nil {
		p = []string{}
	}
	return struct {
		ServiceArns []string `json:"serviceArns"`
		NextToken   string   `json:"nextToken,omitempty"`
	}{p, next}, nil
}

func (s *Sim) ecsDescribeServices(req ecsRequest) (any, *apiError) {
	cluster, apiErr := s.resolveCluster(req.Cluster)
	if apiErr != nil {
		return nil, apiErr
	}
	if len(req.Services) == 0 || len(req.Services) > 10 {
		return nil, ecsInvalidParameter(fmt.Sprintf("services should have between 1 and 10 elements, got %d.", len(req.Services)))
	}
	withTags := slices.Contains(req.Include, "TAGS")
	nowMinute := floorDiv(s.now().Unix(), 60) - 1 // the last minute that has ended
	out := struct {
		Services []ecsService `json:"services"`
		Failures []ecsFailure `json:"failures"`
	}{Services: []ecsService{}, Failures: []ecsFailure{}}
	for _, want := range req.Services {
		i := -1
		for j, svc := range s.services {
			if svc.Cluster == cluster && (svc.Name == want || svc.ARN == want) {
				i = j
				break
			}
		}
		if i < 0 {
			arn := want
			if !strings.HasPrefix(want, "arn:") {
				arn = fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", s.region, s.account, cluster, want)
			}
			out.Failures = append(out.Failures, ecsFailure{Arn: arn, Reason: "MISSING"})
			continue
		}
		svc, m := s.services[i], s.svc[i]
		tasks := s.minute(i, nowMinute).tasks
		es := ecsService{
			ServiceArn:         svc.ARN,
			ServiceName:        svc.Name,
			ClusterArn:         s.clusterArn(cluster),
			LoadBalancers:      []ecsLoadBalancer{},
			Status:             "ACTIVE",
			DesiredCount:       tasks,
			RunningCount:       tasks,
			LaunchType:         "FARGATE",
			PlatformVersion:    "1.4.0",
			PlatformFamily:     "Linux",
			TaskDefinition:     s.taskDefinitionArn(svc),
			CreatedAt:          float64(m.createdAt.Unix()),
			SchedulingStrategy: "REPLICA",
		}
		if svc.TargetGroupARN != "" {
			es.LoadBalancers = append(es.LoadBalancers, ecsLoadBalancer{svc.TargetGroupARN, "app", 8080})
		}
		if withTags {
			es.Tags = []ecsTag{{"team", "platform"}}
			if svc.Project != "" {
				es.Tags = append(es.Tags, ecsTag{"cygni:project", svc.Project}, ecsTag{"cygni:deployment", svc.Deployment})
			}
		}
		out.Services = append(out.Services, es)
	}
	return out, nil
}

func (s *Sim) taskDefinitionArn(svc Service) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s:3", s.region, s.account, svc.Name)
}

func (s *Sim) ecsDescribeTaskDefinition(req ecsRequest) (any, *apiError) {
	td := req.TaskDefinition
	if i := strings.LastIndex(td, "task-definition/"); i >= 0 {
		td = td[i+len("task-definition/"):]
	}
	family, rev, _ := strings.Cut(td, ":")
	for _, svc := range s.services {
		if svc.Name != family || (rev != "" && rev != "3") {
			continue
		}
		type container struct {
			Name      string `json:"name"`
			Image     string `json:"image"`
			Essential bool   `json:"essential"`
		}
		return struct {
			TaskDefinition any `json:"taskDefinition"`
		}{struct {
			TaskDefinitionArn       string      `json:"taskDefinitionArn"`
			Family                  string      `json:"family"`
			Revision                int         `json:"revision"`
			Status                  string      `json:"status"`
			NetworkMode             string      `json:"networkMode"`
			RequiresCompatibilities []string    `json:"requiresCompatibilities"`
			Compatibilities         []string    `json:"compatibilities"`
			CPU                     string      `json:"cpu"`
			Memory                  string      `json:"memory"`
			ContainerDefinitions    []container `json:"containerDefinitions"`
		}{
			s.taskDefinitionArn(svc), svc.Name, 3, "ACTIVE", "awsvpc",
			[]string{"FARGATE"}, []string{"EC2", "FARGATE"},
			strconv.Itoa(svc.TaskCPU), strconv.Itoa(svc.TaskMemoryMiB),
			[]container{{"app", "public.ecr.aws/cygni/" + svc.Name + ":latest", true}},
		}}, nil
	}
	return nil, &apiError{http.StatusBadRequest, "ClientException", "", "Sender", "Unable to describe task definition."}
}
