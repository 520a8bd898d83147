// Package series is the contract between the collector, the query layer, billing and alerting:
// the names, labels and units of the usage series kept in the TSDB.
//
// Every usage sample is a per-period amount, not a cumulative counter: one sample per series per
// collection period, stamped at the END of its period, whose value is the usage inside
// (end − period, end]. sum_over_time(x[1h]) evaluated at an hour boundary is therefore the exact
// hourly amount. A late correction to a period is written as a further sample inside the same
// period (at end − k ms), so sums stay exact and nothing is ever overwritten.
package series

// Usage series, one sample per period (DESIGN.md, "Series model").
const (
	CPUSeconds         = "cygni_cpu_seconds"          // vCPU-seconds reserved (billed)
	CPUUsedSeconds     = "cygni_cpu_used_seconds"     // vCPU-seconds used
	MemoryGBHours      = "cygni_memory_gb_hours"      // GB-hours reserved (billed), GB = 2^30 bytes
	MemoryUsedGBHours  = "cygni_memory_used_gb_hours" // GB-hours used
	RunningTasks       = "cygni_running_tasks"        // mean running tasks in the period (a gauge)
	EgressBytes        = "cygni_egress_bytes"         // bytes sent out
	Requests           = "cygni_requests"             // HTTP(S) requests through the ALB
	StorageGBHours     = "cygni_storage_gb_hours"     // reserved for EBS/EFS ("coming soon"); nothing writes it yet
	ObjectStorageGBHrs = "cygni_object_storage_gb_hours"
)

// Derived series, written back into the TSDB for the rule engine.
const (
	ProjectBudgetUSD          = "cygni_project_budget_usd"
	ProjectCostUSD            = "cygni_project_cost_usd"
	ProjectCostMonthToDateUSD = "cygni_project_cost_month_to_date_usd"
	ProjectCostForecastUSD    = "cygni_project_cost_forecast_month_usd"
	// ProjectAlertThresholdRatio{project,threshold,basis} is a customer-set alert threshold as
	// a fraction of the budget (threshold="50" → 0.5; basis actual|forecast). The seed's 80 %
	// and 100 % on the actual cost are not exported: the shipped alerts cover them.
	ProjectAlertThresholdRatio = "cygni_project_alert_threshold_ratio"
	// TeamBudgetUSD{team} is a team's budget over all its projects (only teams that set one);
	// TeamCostMonthToDateUSD{team} the sum of its projects' cost in the billing period so far.
	TeamBudgetUSD          = "cygni_team_budget_usd"
	TeamCostMonthToDateUSD = "cygni_team_cost_month_to_date_usd"
	// TeamBudgetUsedPercent{team} is budget.PercentUsed of that sum and the team budget (floored
	// to 0.1): what the team budget alerts compare, as ProjectBudgetUsedPercent for a project.
	TeamBudgetUsedPercent = "cygni_team_budget_used_percent"
	LabelTeam             = "team"
	// ProjectBudgetDailyUSD{project} is a project's daily budget (only projects that set one);
	// ProjectCostDayToDateUSD{project} its cost since local midnight in the team's time zone.
	ProjectBudgetDailyUSD   = "cygni_project_budget_daily_usd"
	ProjectCostDayToDateUSD = "cygni_project_cost_day_to_date_usd"
	// ProjectBudgetDailyUsedPercent{project} is budget.PercentUsed of the day-to-date cost and
	// the daily budget: what the daily budget alert compares.
	ProjectBudgetDailyUsedPercent = "cygni_project_budget_daily_used_percent"
	// ProjectBudgetUsedPercent is budget.PercentUsed of the month-to-date cost and the limit:
	// floored to 0.1, so that comparing it with a threshold in the rule files gives exactly
	// budget.Reached, as the API and the notifier decide.
	ProjectBudgetUsedPercent = "cygni_project_budget_used_percent"
)

// Label names.
const (
	LabelProject    = "project"
	LabelDeployment = "deployment"
	LabelCluster    = "cluster"
	LabelRegion     = "region"
	// LabelAccount is the AWS account id of a target reached through a role (aws.targets with
	// role_arn); absent for the base credentials' own account. Two accounts may hold clusters
	// and services of the same names in one region: without it their series would be one.
	LabelAccount  = "account"
	LabelResource = "resource"
)

// Usage lists the collected usage series in a stable order.
var Usage = []string{CPUSeconds, CPUUsedSeconds, MemoryGBHours, MemoryUsedGBHours, RunningTasks, EgressBytes, Requests}

// GiB is the number of bytes in one "GB" everywhere in Cygni (memory, egress, storage), as AWS bills it.
const GiB = 1 << 30
