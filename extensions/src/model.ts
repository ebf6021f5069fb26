import { ServerConnection } from '@jupyterlab/services';

import { ISignal, Signal } from '@lumino/signaling';

import {
  DatapilotClient,
  IDashboard,
  IDataset,
  IDatasetSummary,
  IImportRequest,
  IJob,
  IMembership,
  IRows,
  IUpload
} from './api';
import { DatapilotError, jobEventsUrl } from './request';
import { adviceFor, can, isFinal, mayCancel } from './util';

/** An error as the panel shows it: the service's message and what to do. */
export interface IProblem {
  message: string;
  advice: string;
}

/** A job the panel follows, with what it is about. */
export interface ITrackedJob extends IJob {
  org: string;
  label: string;
}

/** Which tab of the panel shows. */
export type Tab = 'datasets' | 'jobs' | 'dashboards';

/** The error shown for a failed call. */
export function problemOf(error: unknown): IProblem {
  if (error instanceof DatapilotError) {
    return { message: error.message, advice: adviceFor(error.code, error.response.status) };
  }
  if (error instanceof ServerConnection.NetworkError) {
    return {
      message: 'This Jupyter server did not answer.',
      advice: 'Check your connection, then reload the page.'
    };
  }
  return {
    message: String((error as any)?.message ?? error),
    advice: adviceFor('error')
  };
}

const JOBS_KEPT = 30;

/** What a job is about, for one the panel did not start. */
export function jobLabel(job: IJob): string {
  const what = job.kind === 'ingest' ? 'import' : job.kind;
  return job.dataset ? `${what} ${job.dataset}` : what;
}

/**
 * The state of the Datapilot sidebar, shared by the panel and the commands.
 */
export class DatapilotModel {
  constructor(settings: ServerConnection.ISettings) {
    this.client = new DatapilotClient(settings);
    this.settings = settings;
  }

  readonly client: DatapilotClient;
  readonly settings: ServerConnection.ISettings;

  /** Emitted at every change, for the panel to draw again. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  user = '';
  membership: IMembership | null = null;
  contextProblem: IProblem | null = null;
  loading = false;

  tab: Tab = 'datasets';
  query = '';
  datasets: IDatasetSummary[] = [];
  datasetsProblem: IProblem | null = null;

  selected: string | null = null;
  detail: IDataset | null = null;
  preview: IRows | null = null;
  chartUrl: string | null = null;
  chartProblem: IProblem | null = null;
  detailProblem: IProblem | null = null;
  detailLoading = false;

  jobs: ITrackedJob[] = [];
  jobsProblem: IProblem | null = null;
  dashboards: IDashboard[] | null = null;
  dashboardsProblem: IProblem | null = null;

  /** The last problem of an action (rollback, cancel, import...), shown on top. */
  actionProblem: IProblem | null = null;

  theme: 'light' | 'dark' = 'light';

  get org(): string | null {
    return this.membership?.slug ?? null;
  }

  can(permission: string): boolean {
    return can(this.membership?.permissions, permission);
  }

  /** Load who the user is in this server's organization, then the datasets and jobs. */
  async load(): Promise<void> {
    this.loading = true;
    this.emit();
    try {
      const [context, me] = await Promise.all([this.client.context(), this.client.me()]);
      this.user = me.name;
      const orgs = me.organizations;
      this.membership =
        orgs.find(o => o.slug === context.org) ?? (context.org ? null : orgs[0] ?? null);
      this.contextProblem = this.membership
        ? null
        : {
            message: context.org
              ? `You are not a member of the organization "${context.org}" any more.`
              : 'You are not a member of any organization.',
            advice: 'Ask an admin of your organization for an invitation.'
          };
      void this.refreshJobs();
    } catch (error) {
      this.contextProblem = problemOf(error);
    } finally {
      this.loading = false;
      this.emit();
    }
    if (this.membership) {
      await this.refreshDatasets();
    }
  }

  async refreshDatasets(): Promise<void> {
    const org = this.org;
    if (!org) {
      return;
    }
    try {
      this.datasets = (await this.client.datasets(org)).datasets;
      this.datasetsProblem = null;
    } catch (error) {
      this.datasetsProblem = problemOf(error);
    }
    this.emit();
  }

  setQuery(query: string): void {
    this.query = query;
    this.emit();
  }

  setTab(tab: Tab): void {
    this.tab = tab;
    if (tab === 'dashboards' && this.dashboards === null) {
      void this.refreshDashboards();
    }
    if (tab === 'jobs') {
      void this.refreshJobs();
    }
    this.emit();
  }

  /** Show a dataset's detail: schema, report, preview, chart, versions. */
  async open(name: string): Promise<void> {
    const org = this.org;
    if (!org) {
      return;
    }
    this.tab = 'datasets';
    this.selected = name;
    this.detail = null;
    this.preview = null;
    this.setChart(null);
    this.chartProblem = null;
    this.detailProblem = null;
    this.detailLoading = true;
    this.emit();
    try {
      const [detail, preview] = await Promise.all([
        this.client.dataset(org, name),
        this.client.preview(org, name)
      ]);
      if (this.selected !== name) {
        return;
      }
      this.detail = detail;
      this.preview = preview;
    } catch (error) {
      this.detailProblem = problemOf(error);
    } finally {
      this.detailLoading = false;
      this.emit();
    }
    void this.loadChart(name);
  }

  async loadChart(name: string): Promise<void> {
    const org = this.org;
    if (!org) {
      return;
    }
    try {
      const png = await this.client.chart(org, name, this.theme);
      if (this.selected === name) {
        this.setChart(URL.createObjectURL(png));
        this.chartProblem = null;
      }
    } catch (error) {
      if (this.selected === name) {
        this.chartProblem = problemOf(error);
      }
    }
    this.emit();
  }

  close(): void {
    this.selected = null;
    this.detail = null;
    this.preview = null;
    this.setChart(null);
    this.emit();
  }

  setTheme(theme: 'light' | 'dark'): void {
    if (theme !== this.theme) {
      this.theme = theme;
      if (this.selected) {
        void this.loadChart(this.selected);
      }
    }
  }

  async rollback(version: number): Promise<void> {
    const org = this.org;
    const name = this.selected;
    if (!org || !name) {
      return;
    }
    try {
      await this.client.rollback(org, name, version);
      this.actionProblem = null;
      await Promise.all([this.open(name), this.refreshDatasets()]);
    } catch (error) {
      this.actionProblem = problemOf(error);
      this.emit();
    }
  }

  /** Upload a file from the computer, then follow its job. */
  async upload(file: File, request: IImportRequest): Promise<ITrackedJob | null> {
    const org = this.org;
    if (!org) {
      return null;
    }
    return this.started(() => this.client.upload(org, file, request), file.name);
  }

  /** Import a file of the workspace, then follow its job. */
  async ingest(path: string, request: IImportRequest): Promise<ITrackedJob | null> {
    const org = this.org;
    if (!org) {
      return null;
    }
    return this.started(() => this.client.ingest(org, path, request), path);
  }

  private async started(
    call: () => Promise<IUpload>,
    source: string
  ): Promise<ITrackedJob | null> {
    try {
      const answer = await call();
      this.actionProblem = null;
      const job: ITrackedJob = {
        ...answer.job,
        org: this.org!,
        label: `${answer.dataset} ← ${source}`
      };
      this.track(job);
      return job;
    } catch (error) {
      this.actionProblem = problemOf(error);
      this.emit();
      throw error;
    }
  }

  /** Keep a job in the list and follow its events until it ends. */
  track(job: ITrackedJob): void {
    this._labels.set(job.id, job.label);
    this.jobs = [job, ...this.jobs.filter(j => j.id !== job.id)].slice(0, JOBS_KEPT);
    this.emit();
    if (!isFinal(job.state)) {
      this.follow(job);
    }
  }

  /** The job's events over the server extension's WebSocket. */
  private follow(job: ITrackedJob): void {
    if (this._sockets.has(job.id)) {
      return;
    }
    const socket = new WebSocket(jobEventsUrl(job.org, job.id, this.settings));
    this._sockets.set(job.id, socket);
    socket.onmessage = event => {
      const model = JSON.parse(event.data) as IJob;
      this.update(job.id, model);
    };
    socket.onclose = () => {
      this._sockets.delete(job.id);
      const current = this.jobs.find(j => j.id === job.id);
      if (current && !isFinal(current.state)) {
        // the socket closed before the end (the server restarted, the network dropped):
        // ask once, and follow again if it still runs
        void this.client
          .job(job.org, job.id)
          .then(model => {
            this.update(job.id, model);
            if (!isFinal(model.state)) {
              window.setTimeout(() => this.follow({ ...current, ...model }), 2000);
            }
          })
          .catch(() => undefined);
      }
    };
  }

  private update(id: string, model: IJob): void {
    const before = this.jobs.find(j => j.id === id);
    if (!before) {
      return;
    }
    const after = { ...before, ...model };
    this.jobs = this.jobs.map(j => (j.id === id ? after : j));
    this.emit();
    if (!isFinal(before.state) && isFinal(after.state)) {
      this._jobEnded.emit(after);
      if (after.state === 'succeeded') {
        void this.refreshDatasets();
        if (after.dataset && this.selected === after.dataset) {
          void this.open(after.dataset);
        }
      }
    }
  }

  /** Emitted when a followed job ends. */
  get jobEnded(): ISignal<this, ITrackedJob> {
    return this._jobEnded;
  }

  async cancel(id: string): Promise<void> {
    const job = this.jobs.find(j => j.id === id);
    if (!job) {
      return;
    }
    try {
      this.update(id, await this.client.cancel(job.org, id));
      this.actionProblem = null;
    } catch (error) {
      this.actionProblem = problemOf(error);
    }
    this.emit();
  }

  /**
   * The jobs the Datasets tab shows: those running, and those started here that failed
   * until their failure is dismissed.
   */
  get jobsInView(): ITrackedJob[] {
    return this.jobs.filter(
      j =>
        !isFinal(j.state) ||
        (j.state === 'failed' && this._labels.has(j.id) && !this._dismissed.has(j.id))
    );
  }

  dismissJob(id: string): void {
    this._dismissed.add(id);
    this.emit();
  }

  /** Whether the user may cancel a job: their own, or with data:delete. */
  mayCancel(job: IJob): boolean {
    return mayCancel(job, this.user, this.membership?.permissions);
  }


  async refreshDashboards(): Promise<void> {
    const org = this.org;
    if (!org) {
      return;
    }
    try {
      this.dashboards = (await this.client.dashboards(org)).dashboards;
      this.dashboardsProblem = null;
    } catch (error) {
      this.dashboards = [];
      this.dashboardsProblem = problemOf(error);
    }
    this.emit();
  }

  async publish(body: Record<string, any>): Promise<Record<string, any>> {
    try {
      const answer = await this.client.publish(body);
      this.actionProblem = null;
      await this.refreshDashboards();
      return answer;
    } catch (error) {
      this.actionProblem = problemOf(error);
      this.emit();
      throw error;
    }
  }

  dismissProblem(): void {
    this.actionProblem = null;
    this.emit();
  }

  /**
   * The organization's jobs from the service (newest first), those running followed
   * over their WebSocket; jobs started here keep the label they were given.
   */
  async refreshJobs(): Promise<void> {
    const org = this.org;
    if (!org) {
      return;
    }
    try {
      const { jobs } = await this.client.jobs(org, JOBS_KEPT);
      this.jobs = jobs.map(job => ({
        ...job,
        org,
        label: this._labels.get(job.id) ?? jobLabel(job)
      }));
      this.jobsProblem = null;
      for (const job of this.jobs) {
        if (!isFinal(job.state)) {
          this.follow(job);
        }
      }
    } catch (error) {
      this.jobsProblem = problemOf(error);
    }
    this.emit();
  }

  private setChart(url: string | null): void {
    if (this.chartUrl) {
      URL.revokeObjectURL(this.chartUrl);
    }
    this.chartUrl = url;
  }

  dispose(): void {
    for (const socket of this._sockets.values()) {
      socket.close();
    }
    this._sockets.clear();
    this.setChart(null);
  }

  emit(): void {
    this._changed.emit();
  }

  private _changed = new Signal<this, void>(this);
  private _jobEnded = new Signal<this, ITrackedJob>(this);
  private _sockets = new Map<string, WebSocket>();
  private _labels = new Map<string, string>();
  private _dismissed = new Set<string>();
}
