package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	smithymiddleware "github.com/aws/smithy-go/middleware"
)

// Clients are the AWS clients the collector needs, built from the standard AWS configuration.
type Clients struct {
	CloudWatch *cloudwatch.Client
	ECS        *ecs.Client
	// Region is the resolved region (aws.region, else AWS_REGION or the shared config).
	Region string
}

// NewClients loads the standard AWS configuration (config.LoadDefaultConfig: AWS_REGION,
// AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_CLOUDWATCH, AWS_ENDPOINT_URL_ECS, the credentials chain) and
// builds the CloudWatch and ECS clients. region, when not empty, overrides the configured one.
// Every HTTP attempt (the SDK's retries included) is counted in set as
// cygni_collector_aws_attempts_total and, when it fails, cygni_collector_aws_attempt_errors_total
// by error code. The SDK's own log lines go to logger (component=aws-sdk).
func NewClients(ctx context.Context, logger *slog.Logger, region string, set *metrics.Set) (*Clients, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithLogger(sdkLogger(logger))}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: set aws.region in the config file or AWS_REGION")
	}
	if set != nil {
		cfg.APIOptions = append(cfg.APIOptions, attemptCounter(set))
	}
	return &Clients{CloudWatch: cloudwatch.NewFromConfig(cfg), ECS: ecs.NewFromConfig(cfg), Region: cfg.Region}, nil
}

// sdkLogger writes the SDK's log lines through slog. Its complaints that a response body could
// not be drained before closing ("failed to discard remaining HTTP response body, this may
// affect connection reuse") only mean that the next call opens a new connection, which the SDK
// does by itself: they are debug lines here, not warnings a user should act on.
func sdkLogger(logger *slog.Logger) logging.Logger {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "aws-sdk")
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		msg := fmt.Sprintf(format, v...)
		level := slog.LevelDebug
		if c == logging.Warn && !strings.Contains(msg, "may affect connection reuse") {
			level = slog.LevelWarn
		}
		logger.Log(context.Background(), level, "AWS SDK", "message", msg)
	})
}

// attemptCounter adds a middleware after the retry middleware, so it sees every attempt.
func attemptCounter(set *metrics.Set) func(*smithymiddleware.Stack) error {
	return func(st *smithymiddleware.Stack) error {
		return st.Finalize.Add(smithymiddleware.FinalizeMiddlewareFunc("CygniAttemptCounter",
			func(ctx context.Context, in smithymiddleware.FinalizeInput, next smithymiddleware.FinalizeHandler) (smithymiddleware.FinalizeOutput, smithymiddleware.Metadata, error) {
				svc, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
				out, md, err := next.HandleFinalize(ctx, in)
				set.GetOrCreateCounter(fmt.Sprintf(`cygni_collector_aws_attempts_total{service=%q,operation=%q}`, svc, op)).Inc()
				if err != nil {
					set.GetOrCreateCounter(fmt.Sprintf(`cygni_collector_aws_attempt_errors_total{service=%q,operation=%q,code=%q}`, svc, op, errorCode(err))).Inc()
				}
				return out, md, err
			}), smithymiddleware.After)
	}
}

// retryable reports whether the collector's own back-off should try a batch again: throttling,
// 5xx, PartialData and transport errors are; bad credentials, validation errors and the end of
// the context are not.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, errPartial) {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		st := re.HTTPStatusCode()
		if st == 0 || st >= 500 || st == 429 { // 0: the request was never answered (transport)
			return true
		}
		var ae smithy.APIError
		if errors.As(err, &ae) {
			switch ae.ErrorCode() {
			case "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "RequestThrottled":
				return true
			}
		}
		return false
	}
	return true // transport: connection refused, reset, timeout
}

// TargetConfig is one AWS account and region to collect from (config aws.targets).
type TargetConfig struct {
	// RoleARN is the role assumed with STS AssumeRole for this account; empty: the base
	// credentials themselves (the account they belong to).
	RoleARN string
	// ExternalID is passed to AssumeRole when set (the role's trust policy may require it).
	ExternalID string
	// Region is the region collected and the region label of its series. Required.
	Region string
}

// NewTargets builds a Target per entry of targets from the base AWS configuration (the standard
// chain: config.LoadDefaultConfig, as NewBaseConfig loads it): its credentials assume each
// target's role through STS (credentials/stscreds, cached and refreshed before they expire), and
// its clients call the target's region.
func NewTargets(base aws.Config, targets []TargetConfig) ([]Target, error) {
	stsClient := sts.NewFromConfig(base)
	out := make([]Target, 0, len(targets))
	for i, tc := range targets {
		if tc.Region == "" {
			return nil, fmt.Errorf("aws target %d (%s) has no region", i+1, tc.RoleARN)
		}
		cfg := base.Copy()
		cfg.Region = tc.Region
		name, account := tc.Region, ""
		if tc.RoleARN != "" {
			p := stscreds.NewAssumeRoleProvider(stsClient, tc.RoleARN, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "cygni-usage"
				if tc.ExternalID != "" {
					o.ExternalID = aws.String(tc.ExternalID)
				}
			})
			cfg.Credentials = aws.NewCredentialsCache(p)
			name = tc.RoleARN + " " + tc.Region
			account = accountOf(tc.RoleARN)
		}
		out = append(out, Target{Name: name, Region: tc.Region, Account: account, CloudWatch: cloudwatch.NewFromConfig(cfg), ECS: ecs.NewFromConfig(cfg)})
	}
	return out, nil
}

// accountOf is the account id of arn:aws:iam::<account>:role/<name> ("" for anything else).
func accountOf(roleARN string) string {
	parts := strings.SplitN(roleARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" {
		return ""
	}
	return parts[4]
}

// NewBaseConfig loads the standard AWS configuration as NewClients does (region may be empty
// when every target names its own), with the attempt counters in set.
func NewBaseConfig(ctx context.Context, logger *slog.Logger, region string, set *metrics.Set) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithLogger(sdkLogger(logger))}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if set != nil {
		cfg.APIOptions = append(cfg.APIOptions, attemptCounter(set))
	}
	return cfg, nil
}
