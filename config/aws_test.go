package config

import (
	"strings"
	"testing"
)

// aws.targets: each entry loads with its role and region; a bad region, a malformed role ARN or
// a repeated target fails naming the key.
func TestAWSTargets(t *testing.T) {
	c, err := Parse([]byte(`
aws:
  region: us-east-1
  targets:
    - role_arn: arn:aws:iam::111111111111:role/cygni-collector
      region: us-east-1
    - role_arn: arn:aws:iam::222222222222:role/cygni-collector
      external_id: cygni
      region: eu-west-1
    - region: ap-southeast-2
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []AWSTarget{
		{RoleARN: "arn:aws:iam::111111111111:role/cygni-collector", Region: "us-east-1"},
		{RoleARN: "arn:aws:iam::222222222222:role/cygni-collector", ExternalID: "cygni", Region: "eu-west-1"},
		{Region: "ap-southeast-2"},
	}
	if len(c.AWS.Targets) != len(want) {
		t.Fatalf("targets = %+v", c.AWS.Targets)
	}
	for i := range want {
		if c.AWS.Targets[i] != want[i] {
			t.Errorf("target %d = %+v, want %+v", i, c.AWS.Targets[i], want[i])
		}
	}
	for _, tc := range []struct{ yaml, want string }{
		{"aws:\n  targets:\n    - role_arn: arn:aws:iam::111111111111:role/x\n", `'aws.targets[0].region' is ""; want an AWS region such as eu-west-1`},
		{"aws:\n  targets:\n    - role_arn: arn:aws:iam::1111:role/x\n      region: us-east-1\n", `'aws.targets[0].role_arn' is "arn:aws:iam::1111:role/x"; want arn:aws:iam::<12-digit account>:role/<name>`},
		{"aws:\n  targets:\n    - region: us-east-1\n    - region: us-east-1\n", `'aws.targets[1]' repeats role "" in us-east-1`},
	} {
		_, err := Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
