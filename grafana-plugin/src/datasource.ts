import {
  CoreApp,
  CustomVariableSupport,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceInstanceSettings,
  ScopedVars,
} from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';
import { Observable } from 'rxjs';

import { VariableQueryEditor } from './components/VariableQueryEditor';
import { projectFormat, promFormat } from './format';
import { DEFAULT_QUERY, ResourceOption, UsageDataSourceOptions, UsageQuery } from './types';

/**
 * The Cygni usage data source: every query runs in the Go backend. It also answers dashboard
 * variables (projects, deployments, metrics) and annotations (the notification history).
 */
export class DataSource extends DataSourceWithBackend<UsageQuery, UsageDataSourceOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<UsageDataSourceOptions>) {
    super(instanceSettings);
    this.variables = new UsageVariableSupport(this);
    // Annotations use the query editor (a notifications query) and the backend's frames:
    // fields time, title, text and tags are what Grafana reads annotations from.
    this.annotations = {};
  }

  getDefaultQuery(_: CoreApp): Partial<UsageQuery> {
    return DEFAULT_QUERY;
  }

  applyTemplateVariables(query: UsageQuery, scopedVars: ScopedVars): UsageQuery {
    const t = getTemplateSrv();
    const replace = (v: string | undefined, format?: string | Function) => (v ? t.replace(v, scopedVars, format) : v);
    return {
      ...query,
      metric: replace(query.metric),
      project: replace(query.project, projectFormat),
      tz: replace(query.tz),
      expr: replace(query.expr, promFormat),
      step: replace(query.step),
      legendFormat: query.legendFormat,
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

/** Dashboard variables from the backend's variable queries: frames with fields text and value. */
export class UsageVariableSupport extends CustomVariableSupport<DataSource, UsageQuery> {
  editor = VariableQueryEditor;

  constructor(private readonly datasource: DataSource) {
    super();
  }

  query(request: DataQueryRequest<UsageQuery>): Observable<DataQueryResponse> {
    const targets = request.targets.map((q) => ({
      ...q,
      queryType: 'variable' as const,
      variable: q.variable ?? 'projects',
    }));
    return this.datasource.query({ ...request, targets });
  }
}
