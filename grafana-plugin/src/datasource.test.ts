import { DataQueryRequest, DataSourceInstanceSettings, ScopedVars } from '@grafana/data';
import { of } from 'rxjs';

// A template service that formats values the way Grafana's does: the query's format function
// gets the variable's value (an array for a multi-value variable) and the variable itself.
const variables: Record<string, { value: string | string[]; multi?: boolean; includeAll?: boolean }> = {
  project: { value: ['proj_001', 'proj_002'], multi: true, includeAll: true },
  one: { value: 'proj_007' },
  metric: { value: 'cpuHours' },
  __interval: { value: '1h' },
};
const replace = jest.fn((target: string, _scoped?: ScopedVars, format?: string | Function) =>
  target.replace(/\$(\w+)/g, (m, name: string) => {
    const v = variables[name];
    if (!v) {
      return m;
    }
    if (typeof format === 'function') {
      return format(v.value, v);
    }
    return Array.isArray(v.value) ? '{' + v.value.join(',') + '}' : v.value;
  })
);
jest.mock('@grafana/runtime', () => ({
  ...jest.requireActual('@grafana/runtime'),
  getTemplateSrv: () => ({ replace, getVariables: () => [] }),
}));

import { DataSource, UsageVariableSupport } from './datasource';
import { projectFormat, promFormat, promRegexEscape } from './format';
import { UsageDataSourceOptions, UsageQuery } from './types';

const ds = new DataSource({ uid: 'cygni', jsonData: {} } as DataSourceInstanceSettings<UsageDataSourceOptions>);

describe('DataSource.applyTemplateVariables', () => {
  it('writes a multi-value $project as a comma list and into PromQL as a regex', () => {
    const q = ds.applyTemplateVariables(
      {
        refId: 'A',
        queryType: 'usage',
        metric: '$metric',
        project: '$project',
        expr: 'sum(sum_over_time(x{project=~"$project"}[$__interval]))',
      },
      {}
    );
    expect(q).toMatchObject({
      metric: 'cpuHours',
      project: 'proj_001,proj_002',
      expr: 'sum(sum_over_time(x{project=~"(proj_001|proj_002)"}[1h]))',
    });
  });

  it('keeps a single-value variable as it is', () => {
    const q = ds.applyTemplateVariables(
      { refId: 'A', queryType: 'budget', project: '$one', expr: 'x{project="$one"}' },
      {}
    );
    expect(q).toMatchObject({ project: 'proj_007', expr: 'x{project="proj_007"}' });
  });

  it('leaves the legend format to the backend', () => {
    const q = ds.applyTemplateVariables(
      { refId: 'A', queryType: 'promql', expr: 'up', legendFormat: '{{project}} $one' },
      {}
    );
    expect(q.legendFormat).toBe('{{project}} $one');
  });
});

describe('formats', () => {
  it('joins project values with commas', () => {
    expect(projectFormat(['a', 'b'])).toBe('a,b');
    expect(projectFormat('a')).toBe('a');
  });

  it('escapes regex metacharacters for a double-quoted PromQL string', () => {
    expect(promRegexEscape('web.v2')).toBe('web\\\\.v2');
    expect(promFormat(['a.b', 'c'], { multi: true })).toBe('(a\\\\.b|c)');
    expect(promFormat(['only'], { multi: true })).toBe('only');
    expect(promFormat('x.y', {})).toBe('x.y');
    expect(promFormat('x.y', { includeAll: true })).toBe('x\\\\.y');
  });
});

describe('DataSource.filterQuery', () => {
  it('skips empty PromQL and hidden queries', () => {
    expect(ds.filterQuery({ refId: 'A', queryType: 'promql', expr: ' ' })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', queryType: 'promql', expr: 'up' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', queryType: 'usage', hide: true })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', queryType: 'budget' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', queryType: 'notifications' })).toBe(true);
  });
});

describe('variables and annotations', () => {
  it('supports annotations and custom variables', () => {
    expect(ds.annotations).toBeDefined();
    expect(ds.variables).toBeInstanceOf(UsageVariableSupport);
  });

  it('sends variable queries to the backend as variable queries', (done) => {
    const query = jest.spyOn(ds, 'query').mockReturnValue(of({ data: [] }));
    const request = {
      targets: [
        { refId: 'A', project: '$project' },
        { refId: 'B', variable: 'deployments' },
      ],
    } as unknown as DataQueryRequest<UsageQuery>;
    (ds.variables as UsageVariableSupport).query(request).subscribe(() => {
      expect(query).toHaveBeenCalledWith({
        targets: [
          { refId: 'A', project: '$project', queryType: 'variable', variable: 'projects' },
          { refId: 'B', queryType: 'variable', variable: 'deployments' },
        ],
      });
      query.mockRestore();
      done();
    });
  });
});
