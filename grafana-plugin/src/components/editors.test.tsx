import React from 'react';
import { render, screen, waitFor, fireEvent } from '@testing-library/react';
import { DataSourceSettings } from '@grafana/data';

jest.mock('@grafana/runtime', () => ({
  ...jest.requireActual('@grafana/runtime'),
  getTemplateSrv: () => ({ replace: (v: string) => v, getVariables: () => [{ name: 'project' }] }),
}));

import { ConfigEditor, TOKEN_HELP } from './ConfigEditor';
import { QueryEditor, toOptions, variableOptions } from './QueryEditor';
import { VariableQueryEditor } from './VariableQueryEditor';
import { DataSource } from '../datasource';
import { UsageDataSourceOptions, UsageQuery, UsageSecureJsonData } from '../types';

const fakeDatasource = (projects = [{ value: 'proj_001', label: 'Web shop (proj_001)' }]) =>
  ({
    projects: jest.fn().mockResolvedValue(projects),
    metrics: jest.fn().mockResolvedValue([{ value: 'cost.total', label: 'Cost (total)' }]),
  }) as unknown as DataSource;

const renderQuery = async (query: UsageQuery) => {
  const ds = fakeDatasource();
  const onChange = jest.fn();
  const onRunQuery = jest.fn();
  render(<QueryEditor query={query} onChange={onChange} onRunQuery={onRunQuery} datasource={ds} />);
  await waitFor(() => expect(ds.projects).toHaveBeenCalled());
  return { ds, onChange, onRunQuery };
};

describe('toOptions', () => {
  it('puts "All projects" first for project lists', () => {
    expect(toOptions([{ value: 'proj_1', label: 'One' }], true)).toEqual([
      { label: 'All projects', value: '' },
      { label: 'One', value: 'proj_1', description: undefined },
    ]);
  });

  it("offers the dashboard's variables", () => {
    expect(variableOptions()).toEqual([{ label: '$project', value: '$project', description: 'Dashboard variable' }]);
  });
});

describe('QueryEditor', () => {
  it('loads the drop-downs from the backend and switches query types', async () => {
    const query: UsageQuery = { refId: 'A', queryType: 'usage', metric: 'cost.total' };
    const { ds, onChange, onRunQuery } = await renderQuery(query);
    expect(ds.metrics).toHaveBeenCalled();
    for (const [label, type] of [
      ['PromQL', 'promql'],
      ['Budget', 'budget'],
      ['Notifications', 'notifications'],
    ]) {
      fireEvent.click(screen.getByText(label));
      expect(onChange).toHaveBeenLastCalledWith({ ...query, queryType: type });
    }
    expect(onRunQuery).toHaveBeenCalledTimes(3);
  });

  it('shows the fields of each query type', async () => {
    const { unmount } = render(
      <QueryEditor
        query={{ refId: 'A', queryType: 'usage' }}
        onChange={jest.fn()}
        onRunQuery={jest.fn()}
        datasource={fakeDatasource()}
      />
    );
    expect(screen.getByText('Metric')).toBeInTheDocument();
    expect(screen.getByText('Group by')).toBeInTheDocument();
    expect(screen.getByText('Project')).toBeInTheDocument();
    expect(screen.getByText('Numeric')).toBeInTheDocument();
    expect(screen.queryByText('Value')).not.toBeInTheDocument();
    unmount();
    render(
      <QueryEditor
        query={{ refId: 'A', queryType: 'budget' }}
        onChange={jest.fn()}
        onRunQuery={jest.fn()}
        datasource={fakeDatasource()}
      />
    );
    expect(screen.getByText('Value')).toBeInTheDocument();
    expect(screen.getByText('Project')).toBeInTheDocument();
    expect(screen.queryByText('Metric')).not.toBeInTheDocument();
    expect(screen.queryByText('Numeric')).not.toBeInTheDocument();
    await waitFor(() => expect(screen.getByText('Value')).toBeInTheDocument());
  });

  it('defaults the usage grouping to auto', async () => {
    await renderQuery({ refId: 'A', queryType: 'usage' });
    expect((document.getElementById('query-editor-group-by') as HTMLInputElement).value).toBe('auto');
  });

  it('edits the time zone of usage buckets', async () => {
    const query: UsageQuery = { refId: 'A', queryType: 'usage' };
    const { onChange, onRunQuery } = await renderQuery(query);
    fireEvent.change(screen.getByLabelText('Time zone'), { target: { value: 'Europe/Stockholm' } });
    expect(onChange).toHaveBeenLastCalledWith({ ...query, tz: 'Europe/Stockholm' });
    expect(onRunQuery).not.toHaveBeenCalled();
    fireEvent.blur(screen.getByLabelText('Time zone'));
    expect(onRunQuery).toHaveBeenCalled();
  });

  it('edits the PromQL expression, legend and step', async () => {
    const query: UsageQuery = { refId: 'A', queryType: 'promql', expr: '' };
    const { onChange } = await renderQuery(query);
    fireEvent.change(screen.getByLabelText('PromQL expression'), { target: { value: 'sum(cygni_requests)' } });
    expect(onChange).toHaveBeenLastCalledWith({ ...query, expr: 'sum(cygni_requests)' });
    fireEvent.change(screen.getByLabelText('Legend'), { target: { value: '{{project}}' } });
    expect(onChange).toHaveBeenLastCalledWith({ ...query, legendFormat: '{{project}}' });
    fireEvent.change(screen.getByLabelText('Step'), { target: { value: '1h' } });
    expect(onChange).toHaveBeenLastCalledWith({ ...query, step: '1h' });
  });

  it('toggles numeric frames', async () => {
    const query: UsageQuery = { refId: 'A', queryType: 'usage' };
    const { onChange } = await renderQuery(query);
    fireEvent.click(screen.getByRole('switch'));
    expect(onChange).toHaveBeenLastCalledWith({ ...query, numeric: true });
  });

  it('shows the load error of the project list', async () => {
    const ds = {
      projects: jest.fn().mockRejectedValue({ data: { message: 'the data source has no API token' } }),
      metrics: jest.fn().mockResolvedValue([]),
    } as unknown as DataSource;
    render(
      <QueryEditor
        query={{ refId: 'A', queryType: 'budget' }}
        onChange={jest.fn()}
        onRunQuery={jest.fn()}
        datasource={ds}
      />
    );
    expect(await screen.findByText('the data source has no API token')).toBeInTheDocument();
  });
});

describe('VariableQueryEditor', () => {
  it('lists projects by default and edits the projects of a deployments variable', () => {
    const onChange = jest.fn();
    const ds = fakeDatasource();
    const query: UsageQuery = { refId: 'A' };
    const { rerender } = render(
      <VariableQueryEditor query={query} onChange={onChange} onRunQuery={jest.fn()} datasource={ds} />
    );
    expect(screen.queryByLabelText('Projects of the deployments')).not.toBeInTheDocument();
    fireEvent.click(screen.getByText('Deployments'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'variable', variable: 'deployments' });
    const deployments: UsageQuery = { refId: 'A', queryType: 'variable', variable: 'deployments' };
    rerender(<VariableQueryEditor query={deployments} onChange={onChange} onRunQuery={jest.fn()} datasource={ds} />);
    fireEvent.change(screen.getByLabelText('Projects of the deployments'), { target: { value: '$project' } });
    expect(onChange).toHaveBeenLastCalledWith({ ...deployments, project: '$project' });
    fireEvent.click(screen.getByText('Metrics'));
    expect(onChange).toHaveBeenLastCalledWith({ ...deployments, variable: 'metrics' });
  });
});

describe('ConfigEditor', () => {
  const options = {
    url: '',
    jsonData: {},
    secureJsonFields: {},
    secureJsonData: {},
  } as unknown as DataSourceSettings<UsageDataSourceOptions, UsageSecureJsonData>;

  it('keeps the URL in the data source URL and the token in secure JSON data', () => {
    const onOptionsChange = jest.fn();
    render(<ConfigEditor options={options} onOptionsChange={onOptionsChange} />);
    fireEvent.change(screen.getByLabelText('URL'), { target: { value: 'http://cygni-usage:8080' } });
    expect(onOptionsChange).toHaveBeenLastCalledWith({ ...options, url: 'http://cygni-usage:8080' });
    fireEvent.change(screen.getByLabelText('API token'), { target: { value: 'cyg_secret' } });
    expect(onOptionsChange).toHaveBeenLastCalledWith({ ...options, secureJsonData: { apiToken: 'cyg_secret' } });
    fireEvent.change(screen.getByLabelText('Timeout'), { target: { value: '45' } });
    expect(onOptionsChange).toHaveBeenLastCalledWith({ ...options, jsonData: { timeoutSeconds: 45 } });
  });

  it("tells how to create a token with the CLI's own syntax", () => {
    // cygni-usage token create [<flags>] <team>: the team is an argument, not a --team flag.
    expect(TOKEN_HELP).toContain('cygni-usage token create <team> --role member');
    expect(TOKEN_HELP).not.toContain('--team');
  });
});
