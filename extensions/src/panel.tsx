import { ReactWidget } from '@jupyterlab/apputils';

import { Drag } from '@lumino/dragdrop';

import { Message } from '@lumino/messaging';

import * as React from 'react';

import { IColumn, IDataset, IReport, IRows } from './api';
import { DatapilotModel, IProblem, ITrackedJob, Tab } from './model';
import {
  cellText,
  filterDatasets,
  formatAgo,
  formatBytes,
  formatCount,
  isFinal,
  percent,
  plural
} from './util';

/** The Lab file browser's drag data: the paths of the items dragged. */
const CONTENTS_MIME = 'application/x-jupyter-icontents';

/** What the panel asks of the application (commands it cannot run itself). */
export interface IPanelActions {
  /** Ask for the import options of files from the computer, then upload them. */
  uploadFiles(files: File[]): void;
  /** Import files of the workspace dropped from the Lab's file browser. */
  importPaths(paths: string[]): void;
  /** Put `df = dp.load(name)` into the active notebook. */
  insertCode(name: string): void;
  /** Whether a notebook is there to insert into. */
  canInsert(): boolean;
  /** Publish the active notebook as a dashboard. */
  publish(): void;
  /** Whether a notebook is there to publish. */
  canPublish(): boolean;
}

/**
 * The Datapilot sidebar: a ReactWidget drawn from the model at each of its changes.
 */
export class DatapilotPanel extends ReactWidget {
  constructor(
    readonly model: DatapilotModel,
    readonly actions: IPanelActions
  ) {
    super();
    this.addClass('dp-Panel');
    this.model.changed.connect(this.update, this);
  }

  render(): JSX.Element {
    return <Panel model={this.model} actions={this.actions} />;
  }

  /** Files dragged from the Lab's file browser (Lumino drag events, not the browser's). */
  handleEvent(event: Event): void {
    const drag = event as Drag.Event;
    if (!drag.mimeData?.hasData(CONTENTS_MIME) || !this.model.can('data:import')) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    switch (event.type) {
      case 'lm-dragenter':
      case 'lm-dragover':
        // the file browser offers 'move' only (and does nothing after the drop): the
        // file stays where it is, a copy goes to Datapilot
        drag.dropAction = drag.proposedAction;
        this.node.classList.add('dp-mod-dropTarget');
        break;
      case 'lm-dragleave':
        this.node.classList.remove('dp-mod-dropTarget');
        break;
      case 'lm-drop':
        this.node.classList.remove('dp-mod-dropTarget');
        drag.dropAction = drag.proposedAction;
        this.actions.importPaths(drag.mimeData.getData(CONTENTS_MIME) as string[]);
        break;
    }
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    for (const type of ['lm-dragenter', 'lm-dragleave', 'lm-dragover', 'lm-drop']) {
      this.node.addEventListener(type, this);
    }
  }

  protected onBeforeDetach(msg: Message): void {
    for (const type of ['lm-dragenter', 'lm-dragleave', 'lm-dragover', 'lm-drop']) {
      this.node.removeEventListener(type, this);
    }
    super.onBeforeDetach(msg);
  }

  dispose(): void {
    this.model.changed.disconnect(this.update, this);
    super.dispose();
  }
}

interface IProps {
  model: DatapilotModel;
  actions: IPanelActions;
}

function Panel({ model, actions }: IProps): JSX.Element {
  const m = model.membership;
  return (
    <div className="dp-Panel-content">
      <header className="dp-Header">
        <h2 className="dp-Title">Datapilot</h2>
        {m && (
          <div className="dp-Org" aria-label="Organization and role">
            <span className="dp-OrgName" title={m.slug}>
              {m.name}
            </span>
            <span className={`dp-Role dp-Role-${m.role}`}>{m.role}</span>
          </div>
        )}
      </header>
      {model.loading && <p className="dp-Muted">Loading…</p>}
      <Problem problem={model.contextProblem} />
      {model.actionProblem && (
        <Problem problem={model.actionProblem} onDismiss={() => model.dismissProblem()} />
      )}
      {m && (
        <>
          <Tabs model={model} />
          <div
            className="dp-TabPanel"
            role="tabpanel"
            id={`dp-tabpanel-${model.tab}`}
            aria-labelledby={`dp-tab-${model.tab}`}
          >
            {model.tab === 'datasets' &&
              (model.selected ? (
                <Detail model={model} actions={actions} />
              ) : (
                <Datasets model={model} actions={actions} />
              ))}
            {model.tab === 'jobs' && <Jobs model={model} />}
            {model.tab === 'dashboards' && <Dashboards model={model} actions={actions} />}
          </div>
        </>
      )}
    </div>
  );
}

const TABS: { id: Tab; label: string }[] = [
  { id: 'datasets', label: 'Datasets' },
  { id: 'jobs', label: 'Jobs' },
  { id: 'dashboards', label: 'Dashboards' }
];

function Tabs({ model }: { model: DatapilotModel }): JSX.Element {
  const running = model.jobs.filter(j => !isFinal(j.state)).length;
  const onKey = (event: React.KeyboardEvent) => {
    const at = TABS.findIndex(t => t.id === model.tab);
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (step) {
      event.preventDefault();
      const next = TABS[(at + step + TABS.length) % TABS.length];
      model.setTab(next.id);
      document.getElementById(`dp-tab-${next.id}`)?.focus();
    }
  };
  return (
    <div className="dp-Tabs" role="tablist" aria-label="Datapilot" onKeyDown={onKey}>
      {TABS.map(t => (
        <button
          key={t.id}
          id={`dp-tab-${t.id}`}
          role="tab"
          className="dp-Tab"
          aria-selected={model.tab === t.id}
          aria-controls={`dp-tabpanel-${t.id}`}
          tabIndex={model.tab === t.id ? 0 : -1}
          onClick={() => model.setTab(t.id)}
        >
          {t.label}
          {t.id === 'jobs' && running > 0 && (
            <span className="dp-Badge" aria-label={`${running} running`}>
              {running}
            </span>
          )}
        </button>
      ))}
    </div>
  );
}

function Problem({
  problem,
  onDismiss
}: {
  problem: IProblem | null;
  onDismiss?: () => void;
}): JSX.Element | null {
  if (!problem) {
    return null;
  }
  return (
    <div className="dp-Problem" role="alert">
      <p className="dp-ProblemMessage">{problem.message}</p>
      <p className="dp-ProblemAdvice">{problem.advice}</p>
      {onDismiss && (
        <button className="dp-Link" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

function DropZone({ actions }: { actions: IPanelActions }): JSX.Element {
  const [over, setOver] = React.useState(false);
  const input = React.useRef<HTMLInputElement>(null);
  const take = (files: FileList | null) => {
    if (files && files.length > 0) {
      actions.uploadFiles(Array.from(files));
    }
  };
  return (
    <div
      className={`dp-Drop${over ? ' dp-Drop-over' : ''}`}
      onDragOver={event => {
        if (event.dataTransfer.types.includes('Files')) {
          event.preventDefault();
          event.dataTransfer.dropEffect = 'copy';
          setOver(true);
        }
      }}
      onDragLeave={() => setOver(false)}
      onDrop={event => {
        event.preventDefault();
        setOver(false);
        take(event.dataTransfer.files);
      }}
    >
      <span>
        Drop a CSV, TSV, Excel or Parquet file here (from your computer or the file browser),
        or
      </span>{' '}
      <button className="dp-Button dp-Button-primary" onClick={() => input.current?.click()}>
        Upload a file…
      </button>
      <input
        ref={input}
        type="file"
        className="dp-FileInput"
        aria-label="File to upload to Datapilot"
        accept=".csv,.tsv,.txt,.xlsx,.xlsm,.xls,.ods,.parquet,.gz,.zip,.bz2"
        onChange={event => {
          take(event.target.files);
          event.target.value = '';
        }}
      />
    </div>
  );
}

function Datasets({ model, actions }: IProps): JSX.Element {
  const shown = filterDatasets(model.datasets, model.query);
  const active = model.jobsInView;
  return (
    <div className="dp-Datasets">
      {model.can('data:import') ? (
        <DropZone actions={actions} />
      ) : (
        <p className="dp-Muted">
          Your role ({model.membership?.role}) can read datasets but not import them.
        </p>
      )}
      {active.length > 0 && (
        <ul className="dp-JobList" aria-label="Your imports">
          {active.map(job => (
            <JobRow
              key={job.id}
              job={job}
              model={model}
              onDismiss={isFinal(job.state) ? () => model.dismissJob(job.id) : undefined}
            />
          ))}
        </ul>
      )}
      <div className="dp-SearchRow">
        <input
          className="dp-Search"
          type="search"
          placeholder="Search datasets"
          aria-label="Search datasets"
          value={model.query}
          onChange={event => model.setQuery(event.target.value)}
        />
        <button
          className="dp-Button"
          onClick={() => void model.refreshDatasets()}
          aria-label="Refresh the datasets"
          title="Refresh"
        >
          ↻
        </button>
      </div>
      <Problem problem={model.datasetsProblem} />
      {model.datasets.length === 0 && !model.datasetsProblem && (
        <p className="dp-Muted">No datasets yet.</p>
      )}
      {model.datasets.length > 0 && shown.length === 0 && (
        <p className="dp-Muted">No dataset matches “{model.query}”.</p>
      )}
      {shown.length > 0 && (
        <ul className="dp-List" aria-label="Datasets">
          {shown.map(d => (
            <li key={d.name}>
              <button
                className="dp-DatasetItem"
                onClick={() => void model.open(d.name)}
                aria-label={`${d.name}: ${plural(d.rows, 'row')}, ${plural(d.columns, 'column')}, version ${d.version}`}
              >
                <span className="dp-DatasetName">{d.name}</span>
                <span className="dp-DatasetVersion">v{d.version}</span>
                <span className="dp-DatasetMeta">
                  {plural(d.rows, 'row')} · {plural(d.columns, 'col')} · {formatBytes(d.bytes)} ·{' '}
                  {formatAgo(d.updated)}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Detail({ model, actions }: IProps): JSX.Element {
  const d = model.detail;
  const name = model.selected!;
  return (
    <div className="dp-Detail">
      <div className="dp-DetailBar">
        <button className="dp-Button" onClick={() => model.close()} aria-label="Back to datasets">
          ← Datasets
        </button>
        <button
          className="dp-Button dp-Button-primary"
          onClick={() => actions.insertCode(name)}
          disabled={!actions.canInsert()}
          title={
            actions.canInsert()
              ? `Insert df = dp.load("${name}") at the cursor`
              : 'Open a notebook to insert the code into'
          }
        >
          Insert code
        </button>
      </div>
      <h3 className="dp-DetailName">{name}</h3>
      {model.detailLoading && <p className="dp-Muted">Loading…</p>}
      <Problem problem={model.detailProblem} />
      {d && (
        <>
          <p className="dp-DetailMeta">
            Version {d.version} · {plural(d.rows, 'row')} · {plural(d.columns.length, 'column')} ·{' '}
            {formatBytes(d.bytes)} · updated {formatAgo(d.updated)}
          </p>
          <Section title="Schema">
            <Schema columns={d.columns} report={d.report} />
          </Section>
          <Section title="Validation report">
            <Report report={d.report} />
          </Section>
          <Section title={`Preview (first ${model.preview?.rows.length ?? 0} rows)`}>
            <Preview rows={model.preview} />
          </Section>
          <Section title="Chart">
            {model.chartUrl ? (
              <img
                className="dp-Chart"
                src={model.chartUrl}
                alt={`The chart Datapilot recommends for ${name}`}
              />
            ) : model.chartProblem ? (
              <Problem problem={model.chartProblem} />
            ) : (
              <p className="dp-Muted">Drawing…</p>
            )}
          </Section>
          <Section title="Versions">
            <Versions model={model} dataset={d} />
          </Section>
        </>
      )}
    </div>
  );
}

function Section({ title, children }: { title: string; children: React.ReactNode }) {
  const id = `dp-section-${title.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <section className="dp-Section" aria-labelledby={id}>
      <h4 id={id} className="dp-SectionTitle">
        {title}
      </h4>
      {children}
    </section>
  );
}

function Schema({ columns, report }: { columns: IColumn[]; report: IReport | null }) {
  const byName = report?.columns ?? {};
  return (
    <table className="dp-Table dp-Schema">
      <thead>
        <tr>
          <th scope="col">Column</th>
          <th scope="col">Type</th>
          <th scope="col">Unit</th>
        </tr>
      </thead>
      {columns.map(c => {
        const reason = byName[c.name]?.reason;
        return (
          <tbody key={c.name} className="dp-SchemaColumn">
            <tr>
              <th scope="row">
                {c.name}
                {c.label && c.label !== c.name && (
                  <span className="dp-Label"> (as uploaded: {c.label})</span>
                )}
              </th>
              <td>
                <span className={`dp-Type dp-Type-${c.type}`}>{c.type ?? '—'}</span>
              </td>
              <td>{c.unit ?? byName[c.name]?.unit ?? ''}</td>
            </tr>
            <tr className="dp-ReasonRow">
              <td colSpan={3} className="dp-Reason">
                {reason ? `Why: ${reason}` : ''}
              </td>
            </tr>
          </tbody>
        );
      })}
    </table>
  );
}

function Report({ report }: { report: IReport | null }) {
  if (!report) {
    return <p className="dp-Muted">This version has no validation report.</p>;
  }
  const bad = Object.entries(report.columns ?? {}).filter(([, c]) => (c.invalid?.count ?? 0) > 0);
  const facts = [
    report.format && `format ${report.format}`,
    report.encoding && `encoding ${report.encoding}`,
    report.delimiter && `delimiter “${report.delimiter}”`,
    report.decimal && `decimal “${report.decimal}”`
  ].filter(Boolean);
  return (
    <div className="dp-Report">
      <p>
        {report.source && <>From {report.source}: </>}
        {formatCount(report.rows_read)} rows read, {formatCount(report.rows_written)} written
        {report.rows_rejected ? `, ${formatCount(report.rows_rejected)} rejected` : ''}.
        {facts.length > 0 && <span className="dp-Muted"> ({facts.join(', ')})</span>}
      </p>
      {bad.length === 0 ? (
        <p className="dp-Good">No bad cells: every value fits its column's type.</p>
      ) : (
        <table className="dp-Table dp-BadCells" aria-label="Bad cells">
          <thead>
            <tr>
              <th scope="col">Column</th>
              <th scope="col">Bad cells</th>
              <th scope="col">Rows</th>
              <th scope="col">Examples</th>
            </tr>
          </thead>
          <tbody>
            {bad.map(([name, c]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td className="dp-BadCount">{formatCount(c.invalid!.count)}</td>
                <td>
                  {c.invalid!.rows.slice(0, 10).join(', ')}
                  {c.invalid!.count > 10 ? ', …' : ''}
                </td>
                <td>
                  <span className="dp-Examples">
                    {c.invalid!.examples.slice(0, 5).map((e, i) => (
                      <code key={i} className="dp-Example">
                        {cellText(e)}
                      </code>
                    ))}
                  </span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {(report.warnings ?? []).length > 0 && (
        <ul className="dp-Warnings" aria-label="Warnings">
          {report.warnings!.map((w, i) => (
            <li key={i}>{w}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Preview({ rows }: { rows: IRows | null }) {
  if (!rows) {
    return <p className="dp-Muted">Loading…</p>;
  }
  if (rows.rows.length === 0) {
    return <p className="dp-Muted">No rows.</p>;
  }
  return (
    <div className="dp-GridScroll" tabIndex={0} aria-label="Preview of the first rows">
      <table className="dp-Table dp-Grid">
        <thead>
          <tr>
            {rows.columns.map(c => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.rows.map((r, i) => (
            <tr key={i}>
              {rows.columns.map(c => (
                <td key={c}>{cellText(r[c])}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Versions({ model, dataset }: { model: DatapilotModel; dataset: IDataset }) {
  const mayRollBack = model.can('data:import');
  return (
    <ul className="dp-Versions">
      {[...dataset.versions]
        .sort((a, b) => b.version - a.version)
        .map(v => (
          <li key={v.version} className="dp-Version">
            <span className="dp-VersionNumber">v{v.version}</span>
            <span className="dp-Muted">
              {plural(v.rows, 'row')} · {formatAgo(v.created)} · {v.created_by}
            </span>
            {v.current ? (
              <span className="dp-Current">current</span>
            ) : (
              mayRollBack && (
                <button
                  className="dp-Button"
                  onClick={() => void model.rollback(v.version)}
                  aria-label={`Roll back to version ${v.version}`}
                >
                  Roll back
                </button>
              )
            )}
          </li>
        ))}
    </ul>
  );
}

function JobRow({
  job,
  model,
  onDismiss
}: {
  job: ITrackedJob;
  model: DatapilotModel;
  onDismiss?: () => void;
}) {
  const pct = percent(job.state === 'succeeded' ? 1 : job.progress);
  return (
    <li className={`dp-Job dp-Job-${job.state}`} aria-label={`Job ${job.label}`}>
      <div className="dp-JobHead">
        <span className="dp-JobLabel">{job.label}</span>
        <span className="dp-JobState">{job.state}</span>
      </div>
      {!isFinal(job.state) && (
        <div
          className="dp-Progress"
          role="progressbar"
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={pct}
          aria-label={`Progress of ${job.label}`}
        >
          <div className="dp-ProgressBar" style={{ width: `${pct}%` }} />
          <span className="dp-ProgressText">{pct}%</span>
        </div>
      )}
      {job.state === 'failed' && job.error && (
        <div className="dp-Problem" role="alert">
          <p className="dp-ProblemMessage">{job.error}</p>
          <p className="dp-ProblemAdvice">
            Fix the file or the import options (name, mode, sheet, types) and import it
            again.
          </p>
        </div>
      )}
      <div className="dp-JobActions">
        <span className="dp-Muted">
          {job.created_by} · {formatAgo(job.created)}
        </span>
        {job.state === 'succeeded' && job.dataset && (
          <button className="dp-Button" onClick={() => void model.open(job.dataset!)}>
            Open {job.dataset}
          </button>
        )}
        {onDismiss && (
          <button className="dp-Button" onClick={onDismiss}>
            Dismiss
          </button>
        )}
        {!isFinal(job.state) && (
          <button
            className="dp-Button"
            onClick={() => void model.cancel(job.id)}
            disabled={!model.mayCancel(job)}
            title={model.mayCancel(job) ? 'Cancel this job' : 'Only its owner may cancel it'}
          >
            Cancel
          </button>
        )}
      </div>
    </li>
  );
}

function Jobs({ model }: { model: DatapilotModel }) {
  const running = model.jobs.filter(j => !isFinal(j.state));
  const recent = model.jobs.filter(j => isFinal(j.state));
  return (
    <div className="dp-Jobs">
      <div className="dp-SearchRow">
        <h3 className="dp-SectionTitle dp-Grow">Running</h3>
        <button
          className="dp-Button"
          onClick={() => void model.refreshJobs()}
          aria-label="Refresh the jobs"
          title="Refresh"
        >
          ↻
        </button>
      </div>
      <Problem problem={model.jobsProblem} />
      {running.length === 0 ? (
        <p className="dp-Muted">No job running.</p>
      ) : (
        <ul className="dp-JobList" aria-label="Running jobs">
          {running.map(j => (
            <JobRow key={j.id} job={j} model={model} />
          ))}
        </ul>
      )}
      <h3 className="dp-SectionTitle">Recent</h3>
      {recent.length === 0 ? (
        <p className="dp-Muted">No job has ended yet.</p>
      ) : (
        <ul className="dp-JobList" aria-label="Recent jobs">
          {recent.map(j => (
            <JobRow key={j.id} job={j} model={model} />
          ))}
        </ul>
      )}
    </div>
  );
}

function Dashboards({ model, actions }: IProps) {
  return (
    <div className="dp-Dashboards">
      {model.can('dashboards:publish') && (
        <button
          className="dp-Button dp-Button-primary"
          onClick={() => actions.publish()}
          disabled={!actions.canPublish()}
          title={actions.canPublish() ? 'Publish the active notebook' : 'Open a notebook first'}
        >
          Publish this notebook…
        </button>
      )}
      <div className="dp-SearchRow">
        <h3 className="dp-SectionTitle dp-Grow">Dashboards of {model.membership?.name}</h3>
        <button
          className="dp-Button"
          onClick={() => void model.refreshDashboards()}
          aria-label="Refresh the dashboards"
          title="Refresh"
        >
          ↻
        </button>
      </div>
      <Problem problem={model.dashboardsProblem} />
      {model.dashboards === null && <p className="dp-Muted">Loading…</p>}
      {model.dashboards !== null && model.dashboards.length === 0 && !model.dashboardsProblem && (
        <p className="dp-Muted">No dashboard published yet.</p>
      )}
      <ul className="dp-List" aria-label="Dashboards">
        {(model.dashboards ?? []).map(d => (
          <li key={d.slug} className="dp-Dashboard">
            <a href={d.url} target="_blank" rel="noopener noreferrer" className="dp-DashboardTitle">
              {d.title || d.slug}
            </a>
            <span className="dp-Muted">
              {' '}
              v{d.version} · {d.kind === 'panel' ? 'Panel' : 'Voilà'} · {d.published_by} ·{' '}
              {formatAgo(d.updated)}
            </span>
            {d.description && <p className="dp-DashboardDescription">{d.description}</p>}
          </li>
        ))}
      </ul>
    </div>
  );
}
