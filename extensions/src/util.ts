/**
 * Pure helpers of the sidebar: formatting, names, options, permissions (unit-tested).
 */

/** The file kinds the service imports, by extension. */
export const IMPORTABLE = /\.(csv|tsv|txt|xlsx|xlsm|xls|ods|parquet|pq)(\.gz|\.bz2|\.zip)?$/i;

/** Workbooks: they have sheets to pick from. */
export const WORKBOOK = /\.(xlsx|xlsm|xls|ods)$/i;

/** The column types a type override may name. */
export const TYPES = ['integer', 'number', 'boolean', 'date', 'datetime', 'string'];

/** The upload modes. */
export const MODES = ['create', 'replace', 'append'];

/** A dataset name: `[a-z][a-z0-9_]{0,62}` (the contract's rule). */
export const DATASET_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/** Whether a path names a file the service can import. */
export function isImportable(path: string): boolean {
  return IMPORTABLE.test(path);
}

/** Whether a path names a workbook (with sheets). */
export function isWorkbook(path: string): boolean {
  return WORKBOOK.test(path.replace(/\.(gz|bz2|zip)$/i, ''));
}

/**
 * A dataset name from a file name: lower case, the extension dropped, every run of other
 * characters one underscore, a letter first, at most 63 characters.
 */
export function datasetNameFor(fileName: string): string {
  const base = fileName.split('/').pop() || '';
  let stem = base.replace(/(\.(gz|bz2|zip))?$/i, '').replace(/\.[^.]*$/, '');
  stem = stem
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (!/^[a-z]/.test(stem)) {
    stem = `data_${stem}`.replace(/_+$/, '');
  }
  return stem.slice(0, 63).replace(/_+$/, '') || 'data';
}

/** Why a dataset name is refused, or null when it is good. */
export function checkDatasetName(name: string): string | null {
  if (DATASET_NAME.test(name)) {
    return null;
  }
  return 'A name starts with a lowercase letter, then up to 62 lowercase letters, digits or underscores.';
}

/**
 * Type overrides from the text of the upload form, one `column: type` a line.
 * Returns the overrides, or the first line that is wrong.
 */
export function parseTypeOverrides(
  text: string
): { types: Record<string, string> } | { error: string } {
  const types: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) {
      continue;
    }
    const at = line.lastIndexOf(':');
    const column = at > 0 ? line.slice(0, at).trim() : '';
    const type = at > 0 ? line.slice(at + 1).trim().toLowerCase() : '';
    if (!column || !TYPES.includes(type)) {
      return {
        error: `"${line}": write one "column: type" a line, the type one of ${TYPES.join(', ')}.`
      };
    }
    types[column] = type;
  }
  return { types };
}

/** The options of an upload form, as the service's `options` JSON (null when none). */
export function uploadOptions(form: {
  sheet?: string;
  types?: Record<string, string>;
  allowSchemaChange?: boolean;
}): Record<string, any> | null {
  const options: Record<string, any> = {};
  if (form.allowSchemaChange) {
    options.allow_schema_change = true;
  }
  const sheet = (form.sheet || '').trim();
  if (sheet) {
    options.sheet = /^\d+$/.test(sheet) ? Number(sheet) : sheet;
  }
  if (form.types && Object.keys(form.types).length > 0) {
    options.types = form.types;
  }
  return Object.keys(options).length > 0 ? options : null;
}

/** The code "Insert code" puts into a notebook. */
export function loadCode(name: string, hasImport: boolean): string {
  const lines = [`df = dp.load(${JSON.stringify(name)})`, 'df'];
  if (!hasImport) {
    lines.unshift('import datapilot_kernel as dp');
  }
  return lines.join('\n');
}

/** 1536 -> "1.5 KB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !isFinite(bytes)) {
    return '—';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** 1234567 -> "1,234,567". */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return '—';
  }
  return n.toLocaleString('en-US');
}

/** 1 -> "1 row", 1234 -> "1,234 rows". */
export function plural(n: number | null | undefined, noun: string): string {
  return `${formatCount(n)} ${n === 1 ? noun : `${noun}s`}`;
}

/** An ISO time as "3 min ago" (or the date, when older than a week). */
export function formatAgo(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) {
    return '—';
  }
  const then = new Date(iso);
  if (isNaN(then.getTime())) {
    return iso;
  }
  const seconds = Math.max(0, Math.round((now.getTime() - then.getTime()) / 1000));
  if (seconds < 45) {
    return 'just now';
  }
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ago`;
  }
  const hours = Math.round(minutes / 60);
  if (hours < 24) {
    return `${hours} h ago`;
  }
  const days = Math.round(hours / 24);
  if (days < 7) {
    return `${days} d ago`;
  }
  return then.toISOString().slice(0, 10);
}

/** A progress fraction as a whole percentage, 0..100. */
export function percent(progress: number | null | undefined): number {
  if (progress === null || progress === undefined || !isFinite(progress)) {
    return 0;
  }
  return Math.round(Math.min(1, Math.max(0, progress)) * 100);
}

/** Whether a job state is final. */
export function isFinal(state: string): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}

/** Datasets whose name matches every word of a search. */
export function filterDatasets<T extends { name: string }>(datasets: T[], query: string): T[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  return datasets.filter(d => words.every(w => d.name.toLowerCase().includes(w)));
}

/**
 * What to do about an error of the service, by its machine code: the sentence shown
 * under the service's own message.
 */
export function adviceFor(code: string, status?: number): string {
  const advice: Record<string, string> = {
    dataset_exists: 'Pick another name, or choose the mode "replace" or "append".',
    invalid_name: 'Use lowercase letters, digits and underscores, starting with a letter.',
    invalid_input: 'Check the field named above and try again.',
    unsupported_type: 'Save the file as CSV, TSV, Excel (.xlsx) or Parquet and import it again.',
    unsupported_media_type:
      'Save the file as CSV, TSV, Excel (.xlsx) or Parquet and import it again.',
    empty_file: 'The file has no rows: check you picked the right one.',
    corrupt_file: 'The file could not be read: export it again from where it came from.',
    too_large: 'Split the file, or ask an admin of your organization for a larger plan.',
    quota_exceeded: 'Delete datasets you no longer need, or ask an admin for a larger plan.',
    rate_limited: 'Wait a moment and try again.',
    forbidden: 'Your role does not allow this: ask an admin of your organization.',
    not_found: 'It may have been deleted: refresh the list.',
    not_authenticated: 'Your session has ended: reload the page and log in again.',
    service_unavailable: 'The data service is not answering: try again in a minute.',
    service_timeout: 'The data service is slow to answer: try again in a minute.',
    not_configured: 'This server is not connected to Datapilot: ask your administrator.',
    job_finished: 'The job had already ended.',
    job_running: 'Wait for the running job to end, or cancel it.',
    schema_mismatch:
      'The new file\'s columns differ: tick "Allow new or missing columns", or replace.'
  };
  if (advice[code]) {
    return advice[code];
  }
  if (status === 403) {
    return advice.forbidden;
  }
  if (status !== undefined && status >= 500) {
    return 'Something failed on the server: try again, and tell your administrator if it persists.';
  }
  return 'Check the input and try again.';
}

/** A permission check on a membership's permission list. */
export function can(permissions: string[] | undefined, permission: string): boolean {
  return !!permissions && permissions.includes(permission);
}

/** Whether a user may cancel a job: their own while it runs, anyone's with data:delete. */
export function mayCancel(
  job: { state: string; created_by: string },
  user: string,
  permissions: string[] | undefined
): boolean {
  return !isFinal(job.state) && (job.created_by === user || can(permissions, 'data:delete'));
}

/** A cell value for the preview grid. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(12)));
  }
  if (typeof value === 'object') {
    return JSON.stringify(value);
  }
  return String(value);
}
