package config

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
}

func (c *AWSConfig) setDefaults() { c.SimulatedSeed = 1 }

func (c *AWSConfig) validate() error { return nil }
