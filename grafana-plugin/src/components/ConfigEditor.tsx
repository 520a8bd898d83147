import React, { ChangeEvent } from 'react';
import { InlineField, Input, SecretInput } from '@grafana/ui';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { UsageDataSourceOptions, UsageSecureJsonData } from '../types';

type Props = DataSourcePluginOptionsEditorProps<UsageDataSourceOptions, UsageSecureJsonData>;

/** TOKEN_HELP says how to get a token, in the CLI's own syntax (`cygni-usage token create --help`). */
export const TOKEN_HELP = 'A token of the team whose projects to show: cygni-usage token create <team> --role member';

/** ConfigEditor sets the cygni-usage URL, the team's API token and the request timeout. */
export function ConfigEditor({ options, onOptionsChange }: Props) {
  const { jsonData, secureJsonFields, secureJsonData } = options;

  const onURLChange = (e: ChangeEvent<HTMLInputElement>) => onOptionsChange({ ...options, url: e.target.value });
  const onTimeoutChange = (e: ChangeEvent<HTMLInputElement>) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, timeoutSeconds: Number(e.target.value) || undefined } });
  const onTokenChange = (e: ChangeEvent<HTMLInputElement>) =>
    onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, apiToken: e.target.value } });
  const onTokenReset = () =>
    onOptionsChange({
      ...options,
      secureJsonFields: { ...secureJsonFields, apiToken: false },
      secureJsonData: { ...secureJsonData, apiToken: '' },
    });

  return (
    <>
      <InlineField label="URL" labelWidth={16} tooltip="The address of cygni-usage, e.g. http://cygni-usage:8080">
        <Input
          id="config-editor-url"
          aria-label="URL"
          value={options.url}
          onChange={onURLChange}
          placeholder="http://cygni-usage:8080"
          width={40}
        />
      </InlineField>
      <InlineField label="API token" labelWidth={16} tooltip={TOKEN_HELP}>
        <SecretInput
          id="config-editor-api-token"
          aria-label="API token"
          isConfigured={!!secureJsonFields?.apiToken}
          value={secureJsonData?.apiToken ?? ''}
          placeholder="cyg_…"
          width={40}
          onReset={onTokenReset}
          onChange={onTokenChange}
        />
      </InlineField>
      <InlineField label="Timeout (s)" labelWidth={16} tooltip="Per request to cygni-usage; default 30">
        <Input
          id="config-editor-timeout"
          aria-label="Timeout"
          type="number"
          value={jsonData.timeoutSeconds ?? ''}
          onChange={onTimeoutChange}
          placeholder="30"
          width={10}
        />
      </InlineField>
    </>
  );
}
