/**
 * The plugin's GraphQL API, called relative to the page: `app/` → `../graphql/`, with the Bearer
 * token from AppBridge (inside the Dashboard) or the staff token (outside it).
 */

export type FlowError = { field?: string | null; code?: string; message: string };

export class ApiError extends Error {
  constructor(message: string, public status?: number) {
    super(message);
  }
}

let currentToken: string | null = null;
export function setToken(token: string | null) {
  currentToken = token;
}

export function apiUrl(href: string): string {
  const page = new URL(href);
  page.hash = "";
  page.search = "";
  return new URL("../graphql/", page).toString();
}

export async function gql<T = any>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(apiUrl(window.location.href), {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(currentToken ? { Authorization: `Bearer ${currentToken}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError("The flows API cannot be reached. Check your connection and try again.");
  }
  let body: { data?: T; errors?: { message: string }[] };
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The flows API answered ${response.status} without JSON.`, response.status);
  }
  if (body.errors?.length) throw new ApiError(body.errors.map((e) => e.message).join("; "), response.status);
  if (!response.ok || !body.data) throw new ApiError(`The flows API answered ${response.status}.`, response.status);
  return body.data;
}

/** Mutation errors by field ("" for errors about no single field), for showing next to the fields. */
export function fieldErrors(errors: FlowError[] | undefined | null): Record<string, string> {
  const byField: Record<string, string> = {};
  for (const error of errors ?? []) {
    const field = error.field ?? "";
    byField[field] = byField[field] ? `${byField[field]} ${error.message}` : error.message;
  }
  return byField;
}
