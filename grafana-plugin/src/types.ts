import { DataSourceJsonData } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

/** The query types the backend answers (pkg/plugin's QueryType… constants). */
export type QueryType = 'usage' | 'budget' | 'promql' | 'notifications' | 'variable';

/** What a variable query lists. */
export type VariableKind = 'projects' | 'deployments' | 'metrics';

/** A budget quantity; empty for the table of all five. */
export type BudgetField = '' | 'used' | 'limit' | 'remaining' | 'percentUsed' | 'forecast';

/** The analytics bucket; auto follows the panel's interval. */
export type GroupBy = 'auto' | 'hour' | 'day' | 'week' | 'month';

/** One panel, variable, annotation or alert query; the field names are the backend's (pkg/plugin.Query). */
export interface UsageQuery extends DataQuery {
  queryType?: QueryType;
  /** usage: an analytics field (cpuHours, egressGB, …) or a cost (cost.total, cost.compute, …). */
  metric?: string;
  /**
   * usage, budget, notifications and the deployments variable: one project id, several
   * (proj_a,proj_b — what a multi-value $project becomes), or empty (or All) for every project.
   */
  project?: string;
  /** usage: auto (default), hour, day, week or month. */
  groupBy?: GroupBy;
  /** usage (and PromQL step alignment): IANA time zone of the buckets. */
  tz?: string;
  /** budget: one quantity per project (what alert rules need), or empty for the table of all five. */
  field?: BudgetField;
  /** promql: the expression, an optional step such as 5m, and a legend such as {{project}}. */
  expr?: string;
  step?: string;
  legendFormat?: string;
  /** notifications: only these types (budget_warning, budget_exceeded, …); empty for all. */
  types?: string[];
  /** variable: what to list. */
  variable?: VariableKind;
  /** numeric frames (one value per series), as alert rules need. */
  numeric?: boolean;
}

export const DEFAULT_QUERY: Partial<UsageQuery> = {
  queryType: 'usage',
  metric: 'cost.total',
  groupBy: 'auto',
};

/** The notification types cygni-usage's shipped rule files raise, for the notifications query. */
export const NOTIFICATION_TYPES: Array<{ value: string; label: string }> = [
  { value: 'budget_warning', label: 'Budget warning (80 %)' },
  { value: 'budget_exceeded', label: 'Budget exceeded (100 %)' },
  { value: 'forecast_exceeded', label: 'Forecast over budget' },
  { value: 'usage_anomaly', label: 'Unusual usage' },
  { value: 'alert_resolved', label: 'Resolved' },
];

/** The data source's JSON settings. The URL is the data source's own URL field. */
export interface UsageDataSourceOptions extends DataSourceJsonData {
  timeoutSeconds?: number;
}

/** Secure settings, sent to the backend only. */
export interface UsageSecureJsonData {
  apiToken?: string;
}

/** One drop-down entry served by the backend's resources (projects, metrics). */
export interface ResourceOption {
  value: string;
  label: string;
  description?: string;
}
