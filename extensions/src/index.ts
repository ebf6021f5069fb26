import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

import {
  Dialog,
  ICommandPalette,
  IThemeManager,
  Notification,
  showDialog
} from '@jupyterlab/apputils';

import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';

import { INotebookTracker } from '@jupyterlab/notebook';

import { LabIcon } from '@jupyterlab/ui-components';

import { askImportOptions, askPublishOptions } from './dialog';
import { DatapilotModel, ITrackedJob } from './model';
import { DatapilotPanel } from './panel';
import { isImportable, loadCode } from './util';

/** The plugin's ID ('<npm-name>:plugin'; its settings schema is schema/plugin.json). */
const PLUGIN_ID = 'datapilot-lab:plugin';

/** The command IDs of the sidebar. */
export namespace CommandIDs {
  export const open = 'datapilot:open';
  export const refresh = 'datapilot:refresh';
  export const upload = 'datapilot:upload';
  export const importFile = 'datapilot:import-file';
  export const insertCode = 'datapilot:insert-code';
  export const showJobs = 'datapilot:show-jobs';
  export const showDashboards = 'datapilot:show-dashboards';
  export const publish = 'datapilot:publish';
}

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
<g class="jp-icon3" fill="#616161">
<path d="M12 2C7.6 2 4 3.5 4 5.5v13C4 20.5 7.6 22 12 22s8-1.5 8-3.5v-13C20 3.5 16.4 2 12 2zm0 2c3.6 0 6 1.1 6 1.5S15.6 7 12 7 6 5.9 6 5.5 8.4 4 12 4zM6 8.1C7.5 8.7 9.6 9 12 9s4.5-.3 6-.9V12c0 .4-2.4 1.5-6 1.5S6 12.4 6 12V8.1zm0 6.5c1.5.6 3.6.9 6 .9s4.5-.3 6-.9v3.9c0 .4-2.4 1.5-6 1.5s-6-1.1-6-1.5v-3.9z"/>
</g></svg>`;

const datapilotIcon = new LabIcon({ name: 'datapilot:icon', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: "The organization's Datapilot datasets, imports, jobs and dashboards.",
  autoStart: true,
  requires: [],
  optional: [
    ILabShell,
    ILayoutRestorer,
    ICommandPalette,
    INotebookTracker,
    IDefaultFileBrowser,
    IThemeManager
  ],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell | null,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null,
    fileBrowser: IDefaultFileBrowser | null,
    themes: IThemeManager | null
  ) => {
    const { commands, shell } = app;
    const model = new DatapilotModel(app.serviceManager.serverSettings);

    const activeNotebook = () => {
      const current = notebooks?.currentWidget ?? null;
      // the notebook the user works in: the one in the main area they last focused
      return current && current.isAttached ? current : null;
    };

    const uploadFiles = async (files: File[]) => {
      for (const file of files) {
        if (!isImportable(file.name)) {
          await showDialog({
            title: 'Import into Datapilot',
            body: `${file.name} is not a file Datapilot imports: use CSV, TSV, Excel (.xlsx, .xls, .ods) or Parquet.`,
            buttons: [Dialog.okButton()]
          });
          continue;
        }
        const request = await askImportOptions(
          file.name,
          model.datasets.map(d => d.name)
        );
        if (request) {
          await model.upload(file, request).catch(() => undefined);
        }
      }
    };

    const panel = new DatapilotPanel(model, {
      uploadFiles: files => void uploadFiles(files),
      importPaths: paths => {
        const path = paths.find(isImportable);
        if (path) {
          void commands.execute(CommandIDs.importFile, { path });
        } else {
          void showDialog({
            title: 'Import into Datapilot',
            body: 'Datapilot imports CSV, TSV, Excel (.xlsx, .xls, .ods) and Parquet files.',
            buttons: [Dialog.okButton()]
          });
        }
      },
      insertCode: name => void commands.execute(CommandIDs.insertCode, { name }),
      canInsert: () => activeNotebook() !== null,
      publish: () => void commands.execute(CommandIDs.publish),
      canPublish: () => activeNotebook() !== null
    });
    panel.id = 'datapilot-sidebar';
    panel.title.icon = datapilotIcon;
    panel.title.caption = 'Datapilot';
    panel.node.setAttribute('role', 'region');
    panel.node.setAttribute('aria-label', 'Datapilot');
    shell.add(panel, 'left', { rank: 150 });
    restorer?.add(panel, 'datapilot-sidebar');

    // the panel's buttons depend on the active notebook
    notebooks?.currentChanged.connect(() => panel.update());
    labShell?.currentChanged.connect(() => panel.update());

    if (themes) {
      const follow = () =>
        model.setTheme(themes.theme && !themes.isLight(themes.theme) ? 'dark' : 'light');
      themes.themeChanged.connect(follow);
      follow();
    }

    model.jobEnded.connect((_, job: ITrackedJob) => {
      if (job.state === 'succeeded') {
        Notification.success(`Datapilot: ${job.label} imported.`, {
          autoClose: 5000,
          actions: job.dataset
            ? [
                {
                  label: 'Open',
                  callback: () => {
                    void model.open(job.dataset!);
                    shell.activateById(panel.id);
                  }
                }
              ]
            : []
        });
      } else if (job.state === 'failed') {
        Notification.error(`Datapilot: ${job.label} failed: ${job.error ?? 'no reason given'}`, {
          autoClose: false
        });
      }
    });

    commands.addCommand(CommandIDs.open, {
      label: 'Datapilot: Show the Sidebar',
      caption: "Show the organization's datasets, jobs and dashboards",
      icon: datapilotIcon,
      execute: () => {
        shell.activateById(panel.id);
      }
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'Datapilot: Refresh',
      execute: () => model.load()
    });

    commands.addCommand(CommandIDs.upload, {
      label: 'Datapilot: Upload a File…',
      caption: 'Upload a CSV, TSV, Excel or Parquet file from your computer',
      isEnabled: () => model.can('data:import'),
      execute: () => {
        shell.activateById(panel.id);
        const input = document.createElement('input');
        input.type = 'file';
        input.onchange = () => void uploadFiles(Array.from(input.files ?? []));
        input.click();
      }
    });

    const selectedFile = () => {
      if (!fileBrowser) {
        return null;
      }
      const item = fileBrowser.selectedItems().next();
      return item && !item.done && item.value.type !== 'directory' ? item.value : null;
    };

    commands.addCommand(CommandIDs.importFile, {
      label: 'Import into Datapilot',
      caption: 'Import this file as a dataset of your organization',
      icon: datapilotIcon,
      isVisible: () => {
        const file = selectedFile();
        return !!file && isImportable(file.path);
      },
      isEnabled: () => model.can('data:import'),
      execute: async args => {
        const path = (args.path as string) || selectedFile()?.path;
        if (!path) {
          return;
        }
        const request = await askImportOptions(
          path,
          model.datasets.map(d => d.name)
        );
        if (request) {
          shell.activateById(panel.id);
          model.setTab('datasets');
          model.close();
          await model.ingest(path, request).catch(() => undefined);
        }
      }
    });

    app.contextMenu.addItem({
      command: CommandIDs.importFile,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 10
    });

    commands.addCommand(CommandIDs.insertCode, {
      label: args =>
        args.name ? `Datapilot: Insert Code to Load ${args.name}` : 'Datapilot: Insert Code',
      caption: 'Put df = dp.load("<name>") at the cursor of the active notebook',
      isEnabled: args => activeNotebook() !== null && !!(args.name || model.selected),
      execute: args => {
        const name = (args.name as string) || model.selected;
        const notebook = activeNotebook();
        if (!name || !notebook) {
          return;
        }
        const content = notebook.content;
        const hasImport = content.widgets.some(cell =>
          /^\s*import datapilot_kernel as dp\b/m.test(cell.model.sharedModel.getSource())
        );
        const code = loadCode(name, hasImport);
        let cell = content.activeCell;
        if (!cell || cell.model.type !== 'code') {
          // a markdown cell is no place for code: a new code cell below it
          void commands.execute('notebook:insert-cell-below');
          cell = content.activeCell;
        }
        if (!cell) {
          return;
        }
        const editor = cell.editor;
        if (editor?.replaceSelection) {
          editor.replaceSelection(code);
        } else {
          const source = cell.model.sharedModel;
          source.setSource(source.getSource() + code);
        }
        shell.activateById(notebook.id);
        cell.editor?.focus();
      }
    });

    commands.addCommand(CommandIDs.showJobs, {
      label: 'Datapilot: Show Jobs',
      execute: () => {
        model.setTab('jobs');
        shell.activateById(panel.id);
      }
    });

    commands.addCommand(CommandIDs.showDashboards, {
      label: 'Datapilot: Show Dashboards',
      execute: () => {
        model.setTab('dashboards');
        shell.activateById(panel.id);
      }
    });

    commands.addCommand(CommandIDs.publish, {
      label: 'Datapilot: Publish This Notebook…',
      caption: 'Publish the active notebook as a dashboard of your organization',
      isEnabled: () => activeNotebook() !== null && model.can('dashboards:publish'),
      execute: async () => {
        const notebook = activeNotebook();
        if (!notebook) {
          return;
        }
        await notebook.context.save();
        const path = notebook.context.path;
        const options = await askPublishOptions(path, model.membership?.name ?? '');
        if (!options) {
          return;
        }
        try {
          const answer = await model.publish({
            path,
            title: options.title,
            kind: options.kind,
            description: options.description
          });
          model.setTab('dashboards');
          shell.activateById(panel.id);
          Notification.success(`Published ${answer.title ?? options.title}.`, {
            autoClose: 5000,
            actions: answer.url
              ? [{ label: 'Open', callback: () => window.open(answer.url, '_blank') }]
              : []
          });
        } catch (error) {
          model.setTab('dashboards');
          shell.activateById(panel.id);
        }
      }
    });

    if (palette) {
      const category = 'Datapilot';
      for (const command of [
        CommandIDs.open,
        CommandIDs.refresh,
        CommandIDs.upload,
        CommandIDs.insertCode,
        CommandIDs.showJobs,
        CommandIDs.showDashboards,
        CommandIDs.publish
      ]) {
        palette.addItem({ command, category });
      }
    }

    void app.restored.then(() => model.load());
  }
};

export default plugin;
