import React from 'react';
import { render, screen, waitFor, fireEvent } from '@testing-library/react';
import { DataSourceSettings } from '@grafana/data';

import { ConfigEditor } from './ConfigEditor';
import { QueryEditor, toOptions } from './QueryEditor';
import { DataSource } from '../datasource';
import { UsageDataSourceOptions, UsageQuery, UsageSecureJsonData } from '../types';

const fakeDatasource = (projects = [{ value: 'proj_001', label: 'Web shop (proj_001)' }]) =>
  ({
    projects: jest.fn().mockResolvedValue(projects),
    metrics: jest.fn().mockResolvedValue([{ value: 'cost.total', label: 'Cost (total)' }]),
  }) as unknown as DataSource;

describe('toOptions', () => {
  it('puts "All projects" first for project lists', () => {
    expect(toOptions([{ value: 'proj_1', label: 'One' }], true)).toEqual([
      { label: 'All projects', value: '' },
      { label: 'One', value: 'proj_1', description: undefined },
    ]);
  });
});

describe('QueryEditor', () => {
  it('loads the drop-downs from the backend and switches query types', async () => {
    const ds = fakeDatasource();
    const onChange = jest.fn();
    const onRunQuery = jest.fn();
    const query: UsageQuery = { refId: 'A', queryType: 'usage', metric: 'cost.total' };
    render(<QueryEditor query={query} onChange={onChange} onRunQuery={onRunQuery} datasource={ds} />);
    await waitFor(() => expect(ds.projects).toHaveBeenCalled());
    expect(ds.metrics).toHaveBeenCalled();
    fireEvent.click(screen.getByText('PromQL'));
    expect(onChange).toHaveBeenCalledWith({ ...query, queryType: 'promql' });
    expect(onRunQuery).toHaveBeenCalled();
  });

  it('edits the PromQL expression', async () => {
    const onChange = jest.fn();
    const ds = fakeDatasource();
    const query: UsageQuery = { refId: 'A', queryType: 'promql', expr: '' };
    render(<QueryEditor query={query} onChange={onChange} onRunQuery={jest.fn()} datasource={ds} />);
    await waitFor(() => expect(ds.metrics).toHaveBeenCalled());
    fireEvent.change(screen.getByLabelText('PromQL expression'), { target: { value: 'sum(cygni_requests)' } });
    expect(onChange).toHaveBeenCalledWith({ ...query, expr: 'sum(cygni_requests)' });
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
  });
});
