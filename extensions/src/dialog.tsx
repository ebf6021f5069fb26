import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';

import * as React from 'react';

import { IImportRequest } from './api';
import {
  checkDatasetName,
  datasetNameFor,
  isWorkbook,
  MODES,
  parseTypeOverrides,
  TYPES,
  uploadOptions
} from './util';

/** What the import form holds. */
export interface IImportForm {
  name: string;
  mode: string;
  sheet: string;
  types: string;
  allowSchemaChange: boolean;
}

/**
 * A dialog's form: its values, kept as they are edited, are the dialog's value.
 */
abstract class FormBody<T extends object> extends ReactWidget {
  constructor(protected form: T) {
    super();
  }

  getValue(): T {
    return { ...this.form };
  }

  /** A labelled text field (a textarea with `rows`) bound to `key`, named `dp-<key>`. */
  protected field(
    key: keyof T & string,
    label: string,
    options: { help?: React.ReactNode; placeholder?: string; rows?: number } = {}
  ): JSX.Element {
    const props = {
      className: 'jp-mod-styled dp-Input',
      name: `dp-${key}`,
      value: String(this.form[key] ?? ''),
      placeholder: options.placeholder,
      onChange: this.set(key),
      'aria-describedby': options.help ? `dp-${key}-help` : undefined
    };
    return (
      <label className="dp-Field">
        <span>{label}</span>
        {options.rows ? <textarea rows={options.rows} {...props} /> : <input {...props} />}
        {options.help && (
          <span id={`dp-${key}-help`} className="dp-Help">
            {options.help}
          </span>
        )}
      </label>
    );
  }

  /** The change handler of the field holding `key`. */
  protected set(key: keyof T) {
    return (event: React.ChangeEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>) => {
      this.form = { ...this.form, [key]: event.target.value };
      this.update();
    };
  }
}

/**
 * The import options form: name, mode, sheet (workbooks), type overrides.
 */
class ImportForm extends FormBody<IImportForm> {
  constructor(
    form: IImportForm,
    private readonly source: string,
    private readonly names: string[],
    private readonly error: string | null
  ) {
    super(form);
    this.addClass('dp-ImportForm');
  }

  render(): JSX.Element {
    const set = (key: keyof IImportForm) => this.set(key);
    const exists = this.names.includes(this.form.name);
    return (
      <div className="dp-Form">
        <p className="dp-Muted">{this.source}</p>
        {this.error && (
          <p className="dp-FormError" role="alert">
            {this.error}
          </p>
        )}
        {this.field('name', 'Dataset name', {
          help:
            exists && this.form.mode === 'create'
              ? 'A dataset has this name: pick another, or replace or append to it.'
              : 'Lowercase letters, digits and underscores, starting with a letter.'
        })}
        <label className="dp-Field">
          <span>Mode</span>
          <select
            className="jp-mod-styled dp-Input"
            name="dp-mode"
            value={this.form.mode}
            onChange={set('mode')}
          >
            {MODES.map(m => (
              <option key={m} value={m}>
                {m === 'create'
                  ? 'create a new dataset'
                  : m === 'replace'
                    ? 'replace (a new version)'
                    : 'append rows (a new version)'}
              </option>
            ))}
          </select>
        </label>
        {this.form.mode === 'append' && (
          <label className="dp-Check">
            <input
              type="checkbox"
              name="dp-allow-schema-change"
              checked={this.form.allowSchemaChange}
              onChange={event => {
                this.form = { ...this.form, allowSchemaChange: event.target.checked };
                this.update();
              }}
            />
            <span>Allow new or missing columns (the dataset's schema changes)</span>
          </label>
        )}
        {isWorkbook(this.source) &&
          this.field('sheet', 'Sheet', {
            placeholder: 'the first sheet with a table',
            help: 'A sheet name or number; * makes one dataset a sheet.'
          })}
        {this.field('types', 'Type overrides', {
          rows: 3,
          placeholder: 'postcode: string\namount: number',
          help: `One “column: type” a line; types: ${TYPES.join(', ')}. Empty: Datapilot decides.`
        })}
      </div>
    );
  }
}

/**
 * Ask for the import options of a file; null when the user cancels.
 *
 * @param source the file's name or workspace path
 * @param names the datasets that exist (to warn of a clash)
 */
export async function askImportOptions(
  source: string,
  names: string[]
): Promise<IImportRequest | null> {
  let form: IImportForm = {
    name: datasetNameFor(source),
    mode: 'create',
    sheet: '',
    types: '',
    allowSchemaChange: false
  };
  let error: string | null = null;
  for (;;) {
    const body = new ImportForm(form, source, names, error);
    const result = await showDialog({
      title: 'Import into Datapilot',
      body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Import' })],
      focusNodeSelector: 'input[name="dp-name"]'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    form = result.value;
    const name = form.name.trim();
    const types = parseTypeOverrides(form.types);
    error = checkDatasetName(name) ?? ('error' in types ? types.error : null);
    if (!error && form.mode === 'create' && names.includes(name)) {
      error = `A dataset named "${name}" exists: pick another name, or the mode replace or append.`;
    }
    if (!error && form.mode !== 'create' && !names.includes(name)) {
      error = `There is no dataset "${name}" to ${form.mode}: use the mode create.`;
    }
    if (!error && 'types' in types) {
      return {
        name,
        mode: form.mode,
        options: uploadOptions({
          sheet: form.sheet,
          types: types.types,
          allowSchemaChange: form.mode === 'append' && form.allowSchemaChange
        })
      };
    }
  }
}

/** What the publish form holds. */
export interface IPublishForm {
  title: string;
  kind: string;
  description: string;
}

class PublishForm extends FormBody<IPublishForm> {
  constructor(
    form: IPublishForm,
    private readonly path: string,
    private readonly org: string
  ) {
    super(form);
    this.addClass('dp-PublishForm');
  }

  render(): JSX.Element {
    const set = (key: keyof IPublishForm) => this.set(key);
    return (
      <div className="dp-Form">
        <p className="dp-Muted">
          {this.path}, with the files next to it that its code reads, for the members of{' '}
          {this.org} who may view dashboards. Publishing again makes a new version.
        </p>
        {this.field('title', 'Title')}
        <label className="dp-Field">
          <span>Served with</span>
          <select
            className="jp-mod-styled dp-Input"
            name="dp-kind"
            value={this.form.kind}
            onChange={set('kind')}
          >
            <option value="voila">Voilà (the notebook's outputs and widgets)</option>
            <option value="panel">Panel (panel serve: the notebook's .servable() objects)</option>
          </select>
        </label>
        {this.field('description', 'Description', { rows: 2 })}
      </div>
    );
  }
}

/** Ask how to publish a notebook; null when the user cancels. */
export async function askPublishOptions(
  path: string,
  org: string
): Promise<IPublishForm | null> {
  let form: IPublishForm = {
    title: (path.split('/').pop() || path).replace(/\.ipynb$/, ''),
    kind: 'voila',
    description: ''
  };
  for (;;) {
    const result = await showDialog({
      title: 'Publish this notebook',
      body: new PublishForm(form, path, org),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Publish' })],
      focusNodeSelector: 'input[name="dp-title"]'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    form = result.value;
    if (form.title.trim()) {
      return { ...form, title: form.title.trim() };
    }
  }
}
