// Calls to the HTTP API with the bearer token; any answer that is not 2xx becomes an ApiError carrying the
// server's error body ({ error: { code, message, details } }).

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page, an empty body): the status says enough.
  }
  const error = body && typeof body === "object" ? body.error : null;
  return new ApiError(
    response.status,
    error?.code ?? `HTTP_${response.status}`,
    error?.message ?? `The server answered ${response.status} ${response.statusText}`.trim(),
    error?.details,
  );
}

/** JSON from `path`; throws ApiError for a non-2xx answer and TypeError when the server cannot be reached. */
export async function apiFetch(token, path, { method = "GET", body, headers = {} } = {}) {
  const response = await fetch(path, {
    method,
    headers: {
      Accept: "application/json",
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  if (!response.ok) throw await errorFrom(response);
  return response.status === 204 ? null : response.json();
}
