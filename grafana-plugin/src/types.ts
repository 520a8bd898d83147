import { DataSourceJsonData } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

/** The query types the backend answers. */
export type QueryType = 'usage' | 'budget' | 'promql';

/** One panel or alert query; the field names are the backend's (pkg/plugin.Query). */
export interface UsageQuery extends DataQuery {
  queryType?: QueryType;
  /** usage: an analytics field (cpuHours, egressGB, …) or a cost (cost.total, cost.compute, …). */
  metric?: string;
  /** usage and budget: one project id; empty for every project of the team. */
  project?: string;
  /** usage: hour, day, week or month. */
  groupBy?: 'hour' | 'day' | 'week' | 'month';
  /** usage: IANA time zone of the buckets. */
  tz?: string;
  /** promql: the expression and an optional step such as 5m. */
  expr?: string;
  step?: string;
  /** numeric frames (one value per series), as alert rules need. */
  numeric?: boolean;
}

export const DEFAULT_QUERY: Partial<UsageQuery> = {
  queryType: 'usage',
  metric: 'cost.total',
  groupBy: 'hour',
};

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
