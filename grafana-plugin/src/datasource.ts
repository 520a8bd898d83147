import { CoreApp, DataSourceInstanceSettings, ScopedVars } from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';

import { DEFAULT_QUERY, ResourceOption, UsageDataSourceOptions, UsageQuery } from './types';

/** The Cygni usage data source: every query runs in the Go backend. */
export class DataSource extends DataSourceWithBackend<UsageQuery, UsageDataSourceOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<UsageDataSourceOptions>) {
    super(instanceSettings);
  }

  getDefaultQuery(_: CoreApp): Partial<UsageQuery> {
    return DEFAULT_QUERY;
  }

  applyTemplateVariables(query: UsageQuery, scopedVars: ScopedVars): UsageQuery {
    const t = getTemplateSrv();
    const replace = (v?: string) => (v ? t.replace(v, scopedVars) : v);
    return {
      ...query,
      metric: replace(query.metric),
      project: replace(query.project),
      expr: replace(query.expr),
      step: replace(query.step),
    };
  }

  filterQuery(query: UsageQuery): boolean {
    if (query.hide) {
      return false;
    }
    return query.queryType !== 'promql' || !!query.expr?.trim();
  }

  /** The team's projects, for the editors' drop-downs. */
  projects(): Promise<ResourceOption[]> {
    return this.getResource('projects');
  }

  /** The usage query's metrics. */
  metrics(): Promise<ResourceOption[]> {
    return this.getResource('metrics');
  }
}
