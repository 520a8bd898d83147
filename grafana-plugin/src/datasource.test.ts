import { DataSourceInstanceSettings } from '@grafana/data';

const replace = jest.fn((v: string) => v.replace('$metric', 'cpuHours').replace('$project', 'proj_001'));
jest.mock('@grafana/runtime', () => ({
  ...jest.requireActual('@grafana/runtime'),
  getTemplateSrv: () => ({ replace }),
}));

import { DataSource } from './datasource';
import { UsageDataSourceOptions } from './types';

const ds = new DataSource({ uid: 'cygni', jsonData: {} } as DataSourceInstanceSettings<UsageDataSourceOptions>);

describe('DataSource', () => {
  it('replaces dashboard variables in metric, project and PromQL', () => {
    const q = ds.applyTemplateVariables(
      { refId: 'A', queryType: 'usage', metric: '$metric', project: '$project', expr: 'sum(x{project="$project"})' },
      {}
    );
    expect(q).toMatchObject({ metric: 'cpuHours', project: 'proj_001', expr: 'sum(x{project="proj_001"})' });
  });

  it('skips empty PromQL and hidden queries', () => {
    expect(ds.filterQuery({ refId: 'A', queryType: 'promql', expr: ' ' })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', queryType: 'promql', expr: 'up' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', queryType: 'usage', hide: true })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', queryType: 'budget' })).toBe(true);
  });
});
