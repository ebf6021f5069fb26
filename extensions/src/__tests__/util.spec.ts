import { describe, expect, it } from 'vitest';

import {
  adviceFor,
  can,
  cellText,
  checkDatasetName,
  datasetNameFor,
  filterDatasets,
  formatAgo,
  formatBytes,
  formatCount,
  isFinal,
  isImportable,
  isWorkbook,
  loadCode,
  mayCancel,
  parseTypeOverrides,
  percent,
  plural,
  uploadOptions
} from '../util';

describe('files Datapilot imports', () => {
  it.each([
    ['sales.csv', true],
    ['data/Sales 2024.TSV', true],
    ['book.xlsx', true],
    ['old.xls', true],
    ['sheet.ods', true],
    ['table.parquet', true],
    ['export.csv.gz', true],
    ['notes.md', false],
    ['analysis.ipynb', false],
    ['csv', false]
  ])('%s -> %s', (path, expected) => {
    expect(isImportable(path)).toBe(expected);
  });

  it('knows workbooks, compressed or not', () => {
    expect(isWorkbook('a/b.xlsx')).toBe(true);
    expect(isWorkbook('b.ods.gz')).toBe(true);
    expect(isWorkbook('b.csv')).toBe(false);
  });
});

describe('dataset names', () => {
  it.each([
    ['sales.csv', 'sales'],
    ['data/Umsätze 2024 (final).xlsx', 'umsatze_2024_final'],
    ['2024-report.csv', 'data_2024_report'],
    ['export.csv.gz', 'export'],
    ['---.csv', 'data'],
    [`${'a'.repeat(80)}.csv`, 'a'.repeat(63)]
  ])('%s -> %s', (file, name) => {
    expect(datasetNameFor(file)).toBe(name);
    expect(checkDatasetName(datasetNameFor(file))).toBeNull();
  });

  it('refuses what the contract refuses', () => {
    for (const bad of ['', 'Sales', '1abc', 'a-b', 'a'.repeat(64), 'sales\n']) {
      expect(checkDatasetName(bad)).toMatch(/lowercase letter/);
    }
  });
});

describe('import options', () => {
  it('reads type overrides, one a line', () => {
    expect(parseTypeOverrides('plz: string\n\n Betrag : NUMBER \n')).toEqual({
      types: { plz: 'string', Betrag: 'number' }
    });
    expect(parseTypeOverrides('a:b: date')).toEqual({ types: { 'a:b': 'date' } });
  });

  it('names the wrong line', () => {
    const result = parseTypeOverrides('plz: string\namount: money');
    expect('error' in result && result.error).toMatch(/"amount: money"/);
    expect('error' in parseTypeOverrides('no type here')).toBe(true);
  });

  it('sends only the options given', () => {
    expect(uploadOptions({ sheet: '  ', types: {} })).toBeNull();
    expect(uploadOptions({ sheet: '2' })).toEqual({ sheet: 2 });
    expect(uploadOptions({ sheet: 'Q1', types: { a: 'date' } })).toEqual({
      sheet: 'Q1',
      types: { a: 'date' }
    });
    expect(uploadOptions({ sheet: '*' })).toEqual({ sheet: '*' });
    expect(uploadOptions({ allowSchemaChange: true })).toEqual({ allow_schema_change: true });
  });
});

describe('the code inserted into a notebook', () => {
  it('loads the dataset, importing the client once', () => {
    expect(loadCode('sales', false)).toBe(
      'import datapilot_kernel as dp\ndf = dp.load("sales")\ndf'
    );
    expect(loadCode('sales', true)).toBe('df = dp.load("sales")\ndf');
  });
});

describe('formatting', () => {
  it('sizes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GB');
    expect(formatBytes(200 * 1024 ** 2)).toBe('200 MB');
    expect(formatBytes(undefined)).toBe('—');
  });

  it('plurals', () => {
    expect(plural(1, 'row')).toBe('1 row');
    expect(plural(0, 'row')).toBe('0 rows');
    expect(plural(1234, 'column')).toBe('1,234 columns');
  });

  it('counts', () => {
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatCount(null)).toBe('—');
  });

  it('times', () => {
    const now = new Date('2026-01-10T12:00:00Z');
    expect(formatAgo('2026-01-10T11:59:50Z', now)).toBe('just now');
    expect(formatAgo('2026-01-10T11:30:00Z', now)).toBe('30 min ago');
    expect(formatAgo('2026-01-10T07:00:00Z', now)).toBe('5 h ago');
    expect(formatAgo('2026-01-08T12:00:00Z', now)).toBe('2 d ago');
    expect(formatAgo('2025-12-01T12:00:00Z', now)).toBe('2025-12-01');
    expect(formatAgo(null, now)).toBe('—');
  });

  it('progress', () => {
    expect(percent(0.456)).toBe(46);
    expect(percent(1.5)).toBe(100);
    expect(percent(-1)).toBe(0);
    expect(percent(null)).toBe(0);
  });

  it('cells', () => {
    expect(cellText(null)).toBe('');
    expect(cellText(0.1 + 0.2)).toBe('0.3');
    expect(cellText(42)).toBe('42');
    expect(cellText(true)).toBe('true');
    expect(cellText({ a: 1 })).toBe('{"a":1}');
  });
});

describe('jobs, search, permissions, advice', () => {
  it('final states', () => {
    expect(['queued', 'running', 'succeeded', 'failed', 'cancelled'].map(isFinal)).toEqual([
      false,
      false,
      true,
      true,
      true
    ]);
  });

  it('search matches every word', () => {
    const all = [{ name: 'sales_2024' }, { name: 'sales_2023' }, { name: 'cities' }];
    expect(filterDatasets(all, 'SALES 2024')).toEqual([{ name: 'sales_2024' }]);
    expect(filterDatasets(all, '  ')).toEqual(all);
  });

  it('permissions', () => {
    expect(can(['data:read', 'data:import'], 'data:import')).toBe(true);
    expect(can(['data:read'], 'data:import')).toBe(false);
    expect(can(undefined, 'data:read')).toBe(false);
  });

  it('cancel: one\'s own running job, or anyone\'s with data:delete', () => {
    const analyst = ['data:read', 'data:import'];
    const manager = [...analyst, 'data:delete'];
    const running = { state: 'running', created_by: 'bob' };
    expect(mayCancel(running, 'bob', analyst)).toBe(true);
    expect(mayCancel(running, 'alice', analyst)).toBe(false);
    expect(mayCancel(running, 'alice', manager)).toBe(true);
    expect(mayCancel({ ...running, state: 'succeeded' }, 'bob', manager)).toBe(false);
  });

  it('says what to do', () => {
    expect(adviceFor('dataset_exists')).toMatch(/replace/);
    expect(adviceFor('something_new', 403)).toMatch(/role/);
    expect(adviceFor('something_new', 502)).toMatch(/try again/);
    expect(adviceFor('something_new', 400)).toMatch(/Check/);
  });
});
