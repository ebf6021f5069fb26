import { URLExt } from '@jupyterlab/coreutils';

import { ServerConnection } from '@jupyterlab/services';

/**
 * The server extension's API namespace: every call of the sidebar goes to this server's
 * own origin, which forwards it to the data service with the user's token.
 */
export const API_NAMESPACE = 'datapilot/api/v1';

/**
 * An error of the Datapilot API, with the contract's machine code and details.
 */
export class DatapilotError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly code: string,
    readonly details: Record<string, any>
  ) {
    super(response, message);
  }
}

/**
 * Call the server extension.
 *
 * @param endPoint API path under `datapilot/api/v1/`
 * @param serverSettings The server settings to use for the request
 * @param init Initial values for the request
 * @returns The response body interpreted as JSON
 */
export async function requestAPI<T>(
  endPoint: string,
  serverSettings: ServerConnection.ISettings,
  init: RequestInit = {}
): Promise<T> {
  const response = await send(endPoint, serverSettings, init);
  let data: any = await response.text();
  if (data.length > 0) {
    try {
      data = JSON.parse(data);
    } catch (error) {
      console.log('Not a JSON response body.', response);
    }
  }
  if (!response.ok) {
    throw asError(response, data);
  }
  return data;
}

/**
 * Call the server extension for a binary answer (a chart's PNG).
 */
export async function requestBlob(
  endPoint: string,
  serverSettings: ServerConnection.ISettings,
  init: RequestInit = {}
): Promise<Blob> {
  const response = await send(endPoint, serverSettings, init);
  if (!response.ok) {
    const text = await response.text();
    let data: any = text;
    try {
      data = JSON.parse(text);
    } catch (error) {
      // not JSON: the text is the message
    }
    throw asError(response, data);
  }
  return response.blob();
}

/**
 * The WebSocket URL of a job's events, on this server (the extension relays them).
 */
export function jobEventsUrl(
  org: string,
  jobId: string,
  serverSettings: ServerConnection.ISettings
): string {
  let url = URLExt.join(
    serverSettings.wsUrl,
    API_NAMESPACE,
    'orgs',
    encodeURIComponent(org),
    'jobs',
    encodeURIComponent(jobId),
    'events'
  );
  // browsers cannot set headers on a WebSocket: a token goes in the query, as Lab's own do
  if (serverSettings.token) {
    url += `?token=${encodeURIComponent(serverSettings.token)}`;
  }
  return url;
}

async function send(
  endPoint: string,
  serverSettings: ServerConnection.ISettings,
  init: RequestInit
): Promise<Response> {
  const requestUrl = URLExt.join(serverSettings.baseUrl, API_NAMESPACE, endPoint);
  try {
    return await ServerConnection.makeRequest(requestUrl, init, serverSettings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as any);
  }
}

function asError(response: Response, data: any): DatapilotError {
  const isObject = data !== null && typeof data === 'object';
  const message =
    (isObject && data.message) ||
    (typeof data === 'string' && data) ||
    `${response.status} ${response.statusText}`;
  return new DatapilotError(
    response,
    message,
    (isObject && data.error) || 'error',
    (isObject && data.details) || {}
  );
}
