/**
 * How dashboard variables are written into queries. A multi-value variable reaches the backend
 * as a comma list for project fields (the backend also reads Grafana's {a,b} and (a|b)), and as
 * a regular expression (a|b) inside PromQL, as Grafana's Prometheus data source writes it.
 */

interface VariableLike {
  multi?: boolean;
  includeAll?: boolean;
}

/** projectFormat joins the selected values with commas. */
export function projectFormat(value: string | string[]): string {
  return Array.isArray(value) ? value.join(',') : value;
}

/** promRegexEscape escapes a value for a regular expression inside a double-quoted PromQL string. */
export function promRegexEscape(value: string): string {
  return value.replace(/\\/g, '\\\\\\\\').replace(/[$^*{}[\]'+?.()|]/g, '\\\\$&');
}

/**
 * promFormat writes a variable into PromQL: a single value as it is, the values of a multi-value
 * or All-capable variable escaped and joined as (a|b), for use in =~ matchers.
 */
export function promFormat(value: string | string[], variable?: VariableLike): string {
  if (typeof value === 'string') {
    return variable?.multi || variable?.includeAll ? promRegexEscape(value) : value;
  }
  const escaped = value.map(promRegexEscape);
  return escaped.length === 1 ? escaped[0] : '(' + escaped.join('|') + ')';
}
