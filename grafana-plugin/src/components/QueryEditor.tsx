import React, { ChangeEvent, useEffect, useState } from 'react';
import { Combobox, ComboboxOption, InlineField, InlineSwitch, Input, RadioButtonGroup, Stack } from '@grafana/ui';
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { DataSource } from '../datasource';
import { QueryType, ResourceOption, UsageDataSourceOptions, UsageQuery } from '../types';

type Props = QueryEditorProps<DataSource, UsageQuery, UsageDataSourceOptions>;

const queryTypes: Array<SelectableValue<QueryType>> = [
  { label: 'Usage', value: 'usage', description: 'Usage and cost from the analytics API' },
  { label: 'Budget', value: 'budget', description: 'Budget status of projects' },
  { label: 'PromQL', value: 'promql', description: 'Any PromQL over the usage series' },
];

const groupBys: Array<ComboboxOption<string>> = ['hour', 'day', 'week', 'month'].map((g) => ({ label: g, value: g }));

const allProjects = '';

/** toOptions turns the backend's resource list into combobox options. */
export function toOptions(list: ResourceOption[], withAll: boolean): Array<ComboboxOption<string>> {
  const opts = list.map((o) => ({ label: o.label, value: o.value, description: o.description }));
  return withAll ? [{ label: 'All projects', value: allProjects }, ...opts] : opts;
}

/** QueryEditor edits a usage, budget or PromQL query. */
export function QueryEditor({ query, onChange, onRunQuery, datasource }: Props) {
  const [projects, setProjects] = useState<Array<ComboboxOption<string>>>([]);
  const [metrics, setMetrics] = useState<Array<ComboboxOption<string>>>([]);
  const [loadError, setLoadError] = useState<string>();
  const queryType = query.queryType ?? 'usage';

  useEffect(() => {
    let cancelled = false;
    Promise.all([datasource.projects(), datasource.metrics()])
      .then(([p, m]) => {
        if (!cancelled) {
          setProjects(toOptions(p, true));
          setMetrics(toOptions(m, false));
        }
      })
      .catch((e) => !cancelled && setLoadError(String(e?.data?.message ?? e?.message ?? e)));
    return () => {
      cancelled = true;
    };
  }, [datasource]);

  const update = (patch: Partial<UsageQuery>, run = true) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };

  return (
    <Stack direction="column" gap={1}>
      <InlineField label="Query type" labelWidth={14}>
        <RadioButtonGroup<QueryType> options={queryTypes} value={queryType} onChange={(v) => update({ queryType: v })} />
      </InlineField>
      {queryType === 'usage' && (
        <Stack gap={1}>
          <InlineField label="Metric" labelWidth={14}>
            <Combobox
              id="query-editor-metric"
              options={metrics}
              value={query.metric ?? 'cost.total'}
              onChange={(o) => update({ metric: o.value })}
              width={28}
            />
          </InlineField>
          <InlineField label="Group by" labelWidth={10}>
            <Combobox
              id="query-editor-group-by"
              options={groupBys}
              value={query.groupBy ?? 'hour'}
              onChange={(o) => update({ groupBy: o.value as UsageQuery['groupBy'] })}
              width={12}
            />
          </InlineField>
        </Stack>
      )}
      {(queryType === 'usage' || queryType === 'budget') && (
        <InlineField label="Project" labelWidth={14} error={loadError} invalid={!!loadError}>
          <Combobox
            id="query-editor-project"
            options={projects}
            value={query.project ?? allProjects}
            onChange={(o) => update({ project: o.value })}
            createCustomValue
            width={40}
          />
        </InlineField>
      )}
      {queryType === 'promql' && (
        <Stack gap={1}>
          <InlineField label="PromQL" labelWidth={14} grow>
            <Input
              id="query-editor-expr"
              aria-label="PromQL expression"
              value={query.expr ?? ''}
              placeholder='sum by (project) (sum_over_time(cygni_cpu_seconds[1h]))'
              onChange={(e: ChangeEvent<HTMLInputElement>) => update({ expr: e.target.value }, false)}
              onBlur={onRunQuery}
            />
          </InlineField>
          <InlineField label="Step" labelWidth={8}>
            <Input
              id="query-editor-step"
              aria-label="Step"
              value={query.step ?? ''}
              placeholder="auto"
              width={10}
              onChange={(e: ChangeEvent<HTMLInputElement>) => update({ step: e.target.value }, false)}
              onBlur={onRunQuery}
            />
          </InlineField>
        </Stack>
      )}
      <InlineField label="Numeric" labelWidth={14} tooltip="One value per series (alert rules get this automatically)">
        <InlineSwitch value={!!query.numeric} onChange={(e) => update({ numeric: e.currentTarget.checked })} />
      </InlineField>
    </Stack>
  );
}
