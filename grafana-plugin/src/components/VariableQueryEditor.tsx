import React, { ChangeEvent } from 'react';
import { InlineField, Input, RadioButtonGroup, Stack } from '@grafana/ui';
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import type { DataSource } from '../datasource';
import { UsageDataSourceOptions, UsageQuery, VariableKind } from '../types';

type Props = QueryEditorProps<DataSource, UsageQuery, UsageDataSourceOptions, UsageQuery>;

const kinds: Array<SelectableValue<VariableKind>> = [
  { label: 'Projects', value: 'projects', description: "The team's projects: names shown, ids queried" },
  {
    label: 'Deployments',
    value: 'deployments',
    description: 'Deployments (ECS services) of projects with usage in the range',
  },
  { label: 'Metrics', value: 'metrics', description: 'The usage metrics' },
];

/** VariableQueryEditor edits a dashboard variable's query: what to list, and for deployments of which projects. */
export function VariableQueryEditor({ query, onChange }: Props) {
  const kind = query.variable ?? 'projects';
  const update = (patch: Partial<UsageQuery>) =>
    onChange({ ...query, queryType: 'variable', variable: kind, ...patch });
  return (
    <Stack direction="column" gap={1}>
      <InlineField label="List" labelWidth={14}>
        <RadioButtonGroup<VariableKind> options={kinds} value={kind} onChange={(v) => update({ variable: v })} />
      </InlineField>
      {kind === 'deployments' && (
        <InlineField
          label="Projects"
          labelWidth={14}
          tooltip="$project, one or more project ids separated by commas, or empty for all"
        >
          <Input
            id="variable-editor-project"
            aria-label="Projects of the deployments"
            value={query.project ?? ''}
            placeholder="$project"
            width={40}
            onChange={(e: ChangeEvent<HTMLInputElement>) => update({ project: e.target.value })}
          />
        </InlineField>
      )}
    </Stack>
  );
}
