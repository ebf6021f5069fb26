import { ServerConnection } from '@jupyterlab/services';

import { requestAPI, requestBlob } from './request';

/** One of the user's organizations, with their role and what it allows. */
export interface IMembership {
  slug: string;
  name: string;
  plan: string;
  role: string;
  permissions: string[];
}

/** GET me. */
export interface IMe {
  name: string;
  organizations: IMembership[];
}

/** GET context (ext): which organization this server belongs to. */
export interface IServerContext {
  org: string | null;
}

/** A row of the datasets list. */
export interface IDatasetSummary {
  name: string;
  version: number;
  rows: number;
  columns: number;
  bytes: number;
  updated: string;
  created_by: string;
}

/** A column of a dataset. */
export interface IColumn {
  name: string;
  label: string | null;
  type: string | null;
  nullable: boolean | null;
  unit: string | null;
  stats: Record<string, any> | null;
}

/** A version of a dataset. */
export interface IVersion {
  version: number;
  current: boolean;
  rows: number;
  columns: number;
  bytes: number;
  created: string;
  created_by: string;
  source: string | null;
}

/** What the validation report says of one column. */
export interface IColumnReport {
  label?: string;
  type?: string;
  reason?: string;
  unit?: string | null;
  nulls?: number;
  invalid?: { count: number; rows: number[]; examples: any[] };
}

/** The validation report of a version. */
export interface IReport {
  source?: string;
  format?: string;
  encoding?: string | null;
  delimiter?: string | null;
  rows_read?: number;
  rows_rejected?: number;
  rows_written?: number;
  columns?: Record<string, IColumnReport>;
  warnings?: string[];
  [key: string]: any;
}

/** GET a dataset. */
export interface IDataset {
  name: string;
  version: number;
  rows: number;
  bytes: number;
  columns: IColumn[];
  report: IReport | null;
  updated: string;
  versions: IVersion[];
}

/** GET a dataset's rows. */
export interface IRows {
  total_rows: number;
  columns: string[];
  rows: Record<string, any>[];
}

/** A job (ingestion, transformation...). */
export interface IJob {
  id: string;
  kind: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress: number;
  error: string | null;
  dataset: string | null;
  created_by: string;
  created: string;
  finished: string | null;
  result: Record<string, any> | null;
}

/** POST datasets (202). */
export interface IUpload {
  job: IJob;
  dataset: string;
}

/** A published dashboard. */
export interface IDashboard {
  slug: string;
  title: string;
  description: string;
  kind: string;
  version: number;
  published_by: string;
  updated: string;
  url: string;
  thumbnail?: string;
}

/** Import options, as the service reads them. */
export interface IImportRequest {
  name: string;
  mode: string;
  options: Record<string, any> | null;
}

/**
 * The Datapilot API as the sidebar uses it: every call through this server's extension.
 */
export class DatapilotClient {
  constructor(readonly settings: ServerConnection.ISettings) {}

  context(): Promise<IServerContext> {
    return requestAPI<IServerContext>('context', this.settings);
  }

  me(): Promise<IMe> {
    return requestAPI<IMe>('me', this.settings);
  }

  datasets(org: string): Promise<{ datasets: IDatasetSummary[] }> {
    return requestAPI(`orgs/${org}/datasets`, this.settings);
  }

  dataset(org: string, name: string): Promise<IDataset> {
    return requestAPI(`orgs/${org}/datasets/${name}`, this.settings);
  }

  preview(org: string, name: string, limit = 20): Promise<IRows> {
    return requestAPI(`orgs/${org}/datasets/${name}/data?limit=${limit}&format=json`, this.settings);
  }

  chart(org: string, name: string, theme: 'light' | 'dark'): Promise<Blob> {
    return requestBlob(
      `orgs/${org}/visualizations/generate?format=png&theme=${theme}&width=480&height=280`,
      this.settings,
      { method: 'POST', body: JSON.stringify({ dataset: name }) }
    );
  }

  rollback(org: string, name: string, version: number): Promise<IDataset> {
    return requestAPI(`orgs/${org}/datasets/${name}/rollback`, this.settings, {
      method: 'POST',
      body: JSON.stringify({ version })
    });
  }

  job(org: string, id: string): Promise<IJob> {
    return requestAPI(`orgs/${org}/jobs/${id}`, this.settings);
  }

  jobs(org: string, limit: number): Promise<{ jobs: IJob[] }> {
    return requestAPI(`orgs/${org}/jobs?limit=${limit}`, this.settings);
  }

  cancel(org: string, id: string): Promise<IJob> {
    return requestAPI(`orgs/${org}/jobs/${id}/cancel`, this.settings, { method: 'POST' });
  }

  /** Upload a file from the user's computer. */
  upload(org: string, file: File, request: IImportRequest): Promise<IUpload> {
    const form = new FormData();
    form.append('name', request.name);
    form.append('mode', request.mode);
    if (request.options) {
      form.append('options', JSON.stringify(request.options));
    }
    form.append('file', file, file.name);
    return requestAPI(`orgs/${org}/datasets`, this.settings, { method: 'POST', body: form });
  }

  /** Import a file of this server's workspace. */
  ingest(org: string, path: string, request: IImportRequest): Promise<IUpload> {
    const body: Record<string, any> = { path, name: request.name, mode: request.mode, org };
    if (request.options) {
      body.options = request.options;
    }
    return requestAPI('ingest', this.settings, { method: 'POST', body: JSON.stringify(body) });
  }

  dashboards(org: string): Promise<{ dashboards: IDashboard[] }> {
    return requestAPI(`orgs/${org}/dashboards`, this.settings);
  }

  publish(body: Record<string, any>): Promise<Record<string, any>> {
    return requestAPI('publish', this.settings, { method: 'POST', body: JSON.stringify(body) });
  }
}
