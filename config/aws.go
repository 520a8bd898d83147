package config

import (
	"fmt"
	"regexp"
)

// AWSConfig configures the AWS clients. Endpoints and credentials come from the standard AWS
// configuration (AWS_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_CLOUDWATCH, AWS_ENDPOINT_URL_ECS,
// the credentials chain), so the same binary runs against real AWS unchanged.
type AWSConfig struct {
	// Region overrides AWS_REGION when set.
	Region string `yaml:"region"`
	// Simulated starts the built-in simulated AWS endpoint in-process and points the clients at it.
	Simulated bool `yaml:"simulated"`
	// SimulatedSeed seeds the simulated fleet.
	SimulatedSeed int64 `yaml:"simulated_seed"`
	// Targets, if set, are the accounts and regions collected, each through a role assumed
	// with STS AssumeRole from the standard credentials chain (the base account); empty: the
	// base account in aws.region.
	Targets []AWSTarget `yaml:"targets"`
}

// AWSTarget is one account (its role) and region to collect from.
type AWSTarget struct {
	// RoleARN is arn:aws:iam::<account>:role/<name>; empty: the base credentials' own account.
	RoleARN string `yaml:"role_arn"`
	// ExternalID is passed to AssumeRole when the role's trust policy requires one.
	ExternalID string `yaml:"external_id"`
	// Region is collected and set as the region label of its series. Required.
	Region string `yaml:"region"`
}

var (
	roleARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`)
)

func (c *AWSConfig) setDefaults() { c.SimulatedSeed = 1 }

func (c *AWSConfig) validate() error {
	seen := map[string]bool{}
	for i, t := range c.Targets {
		key := fmt.Sprintf("'aws.targets[%d]", i)
		if !regionPattern.MatchString(t.Region) {
			return fmt.Errorf("%s.region' is %q; want an AWS region such as eu-west-1", key, t.Region)
		}
		if t.RoleARN != "" && !roleARNPattern.MatchString(t.RoleARN) {
			return fmt.Errorf("%s.role_arn' is %q; want arn:aws:iam::<12-digit account>:role/<name>", key, t.RoleARN)
		}
		if seen[t.RoleARN+" "+t.Region] {
			return fmt.Errorf("%s' repeats role %q in %s", key, t.RoleARN, t.Region)
		}
		seen[t.RoleARN+" "+t.Region] = true
	}
	return nil
}
