import React, { ChangeEvent, useEffect, useState } from 'react';
import {
  Combobox,
  ComboboxOption,
  InlineField,
  InlineSwitch,
  Input,
  MultiCombobox,
  RadioButtonGroup,
  Stack,
} from '@grafana/ui';
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { getTemplateSrv } from '@grafana/runtime';
import { DataSource } from '../datasource';
import {
  BudgetField,
  GroupBy,
  NOTIFICATION_TYPES,
  QueryType,
  ResourceOption,
  UsageDataSourceOptions,
  UsageQuery,
} from '../types';

type Props = QueryEditorProps<DataSource, UsageQuery, UsageDataSourceOptions>;

const queryTypes: Array<SelectableValue<QueryType>> = [
  { label: 'Usage', value: 'usage', description: 'Usage and cost from the analytics API' },
  { label: 'Budget', value: 'budget', description: 'Budget status of projects' },
  { label: 'PromQL', value: 'promql', description: 'Any PromQL over the usage series' },
  {
    label: 'Notifications',
    value: 'notifications',
    description: 'Budget and anomaly notifications (also as annotations)',
  },
];

const groupBys: Array<ComboboxOption<GroupBy>> = [
  { label: 'auto', value: 'auto', description: "The finest bucket at least as coarse as the panel's interval" },
  { label: 'hour', value: 'hour' },
  { label: 'day', value: 'day' },
  { label: 'week', value: 'week' },
  { label: 'month', value: 'month' },
];

const budgetFields: Array<ComboboxOption<BudgetField>> = [
  { label: 'All (table)', value: '', description: 'A row per project with every quantity; not for alert rules' },
  { label: 'used', value: 'used', description: 'Cost so far in the billing period, USD' },
  { label: 'limit', value: 'limit', description: 'The budget, USD' },
  { label: 'remaining', value: 'remaining', description: 'Budget left, USD' },
  { label: 'percentUsed', value: 'percentUsed', description: 'Percent of the budget used' },
  { label: 'forecast', value: 'forecast', description: 'Forecast cost at the end of the period, USD' },
];

const allProjects = '';

/** toOptions turns the backend's resource list into combobox options. */
export function toOptions(list: ResourceOption[], withAll: boolean): Array<ComboboxOption<string>> {
  const opts = list.map((o) => ({ label: o.label, value: o.value, description: o.description }));
  return withAll ? [{ label: 'All projects', value: allProjects }, ...opts] : opts;
}

/** variableOptions offers the dashboard's variables ($project, …) as values. */
export function variableOptions(): Array<ComboboxOption<string>> {
  return getTemplateSrv()
    .getVariables()
    .map((v) => ({ label: '$' + v.name, value: '$' + v.name, description: 'Dashboard variable' }));
}

/** QueryEditor edits a usage, budget, PromQL or notifications query (panels, annotations, alert rules). */
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
          setProjects([...toOptions(p, true), ...variableOptions()]);
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
        <RadioButtonGroup<QueryType>
          options={queryTypes}
          value={queryType}
          onChange={(v) => update({ queryType: v })}
        />
      </InlineField>
      {queryType === 'usage' && (
        <Stack gap={1}>
          <InlineField label="Metric" labelWidth={14}>
            <Combobox
              id="query-editor-metric"
              options={metrics}
              value={query.metric ?? 'cost.total'}
              onChange={(o) => update({ metric: o.value })}
              createCustomValue
              width={28}
            />
          </InlineField>
          <InlineField
            label="Group by"
            labelWidth={10}
            tooltip="auto follows the panel's interval, so long ranges get days"
          >
            <Combobox<GroupBy>
              id="query-editor-group-by"
              options={groupBys}
              value={query.groupBy ?? 'auto'}
              onChange={(o) => update({ groupBy: o.value })}
              width={12}
            />
          </InlineField>
          <InlineField
            label="Time zone"
            labelWidth={11}
            tooltip="IANA name of the buckets' zone, e.g. Europe/Stockholm; default UTC"
          >
            <Input
              id="query-editor-tz"
              aria-label="Time zone"
              value={query.tz ?? ''}
              placeholder="UTC"
              width={20}
              onChange={(e: ChangeEvent<HTMLInputElement>) => update({ tz: e.target.value }, false)}
              onBlur={onRunQuery}
            />
          </InlineField>
        </Stack>
      )}
      {queryType === 'budget' && (
        <InlineField label="Value" labelWidth={14} tooltip="Alert rules need one value per project: pick a quantity">
          <Combobox<BudgetField>
            id="query-editor-budget-field"
            options={budgetFields}
            value={query.field ?? ''}
            onChange={(o) => update({ field: o.value })}
            width={28}
          />
        </InlineField>
      )}
      {(queryType === 'usage' || queryType === 'budget' || queryType === 'notifications') && (
        <InlineField
          label="Project"
          labelWidth={14}
          error={loadError}
          invalid={!!loadError}
          tooltip="One project, $project (several values are queried together), or All projects"
        >
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
      {queryType === 'notifications' && (
        <InlineField label="Types" labelWidth={14} tooltip="Empty: every notification">
          <MultiCombobox<string>
            id="query-editor-types"
            options={NOTIFICATION_TYPES}
            value={query.types ?? []}
            onChange={(opts) => update({ types: opts.map((o) => o.value) })}
            width={60}
          />
        </InlineField>
      )}
      {queryType === 'promql' && (
        <Stack direction="column" gap={1}>
          <InlineField label="PromQL" labelWidth={14} grow>
            <Input
              id="query-editor-expr"
              aria-label="PromQL expression"
              value={query.expr ?? ''}
              placeholder='sum by (project) (sum_over_time(cygni_cpu_seconds{project=~"$project"}[$__interval]))'
              onChange={(e: ChangeEvent<HTMLInputElement>) => update({ expr: e.target.value }, false)}
              onBlur={onRunQuery}
            />
          </InlineField>
          <Stack gap={1}>
            <InlineField label="Legend" labelWidth={14} tooltip="Series names, e.g. {{project}} reserved">
              <Input
                id="query-editor-legend"
                aria-label="Legend"
                value={query.legendFormat ?? ''}
                placeholder="{{project}}"
                width={30}
                onChange={(e: ChangeEvent<HTMLInputElement>) => update({ legendFormat: e.target.value }, false)}
                onBlur={onRunQuery}
              />
            </InlineField>
            <InlineField
              label="Step"
              labelWidth={8}
              tooltip="Default: the panel's interval; start and end are aligned to it"
            >
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
        </Stack>
      )}
      {(queryType === 'usage' || queryType === 'promql') && (
        <InlineField
          label="Numeric"
          labelWidth={14}
          tooltip="One value per series (alert rules get this automatically)"
        >
          <InlineSwitch value={!!query.numeric} onChange={(e) => update({ numeric: e.currentTarget.checked })} />
        </InlineField>
      )}
    </Stack>
  );
}
