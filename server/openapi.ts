/**
 * The OpenAPI 3.1 document, built from the same route declarations (and zod schemas) that the server checks
 * requests with. JSON Schema 2020-12, which OpenAPI 3.1 uses, is what `z.toJSONSchema` writes.
 */
import { z } from "zod";
import { ErrorResponse, IdempotencyKeyHeader } from "./schemas";
import type { AnyRouteSpec } from "./routes/define";

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  return rest;
}

/** `/cases/:id` -> `/cases/{id}` */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z_]+)/g, "{$1}");
}

function parametersOf(schema: z.ZodType | undefined, where: "path" | "query"): unknown[] {
  if (!schema) return [];
  const json = jsonSchema(schema);
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: where,
    required: where === "path" ? true : required.has(name),
    ...(typeof property.description === "string" ? { description: property.description } : {}),
    schema: property,
  }));
}

const ERROR_CONTENT = { "application/json": { schema: jsonSchema(ErrorResponse) } };

export function buildOpenApi(routes: readonly AnyRouteSpec[], info: { title: string; version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const mutation = route.method !== "get";
    const parameters = [
      ...parametersOf(route.params, "path"),
      ...parametersOf(route.query, "query"),
      ...(route.headers ?? []).map((h) => ({ name: h.name, in: "header", required: false, description: h.description, schema: jsonSchema(h.schema) })),
      ...(mutation && route.auth ? [{ name: "Idempotency-Key", in: "header", required: false, description: IdempotencyKeyHeader.description, schema: jsonSchema(IdempotencyKeyHeader) }] : []),
    ];
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.schema ? { content: { [response.contentType ?? "application/json"]: { schema: jsonSchema(response.schema) } } } : {}),
      };
    }
    if (route.params || route.query || route.body) responses["400"] ??= { description: "Not a valid request: the zod field errors in details", content: ERROR_CONTENT };
    if (route.auth) responses["401"] = { description: "No token, or an unknown or revoked one", content: ERROR_CONTENT };
    if (mutation && route.auth) responses["409"] ??= { description: "The Idempotency-Key was used for another request, or that request is still in flight", content: ERROR_CONTENT };
    responses["429"] = { description: "Too many requests for this token: see Retry-After", headers: { "Retry-After": { schema: { type: "integer" } } }, content: ERROR_CONTENT };
    const path = openApiPath(route.path);
    paths[path] ??= {};
    paths[path][route.method] = {
      operationId: `${route.method}${path.replace(/[{}]/g, "").replace(/(^|[/-])([a-z])/g, (_m, _s, c: string) => c.toUpperCase())}`,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [route.tag],
      security: route.auth ? [{ bearerAuth: [] }] : [],
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body ? { requestBody: { required: true, content: { "application/json": { schema: jsonSchema(route.body) } } } } : {}),
      responses,
    };
  }
  paths["/ui/cases/{id}"] = {
    get: {
      operationId: "getUiCasesId",
      summary: "The buyer's progress page of a case (HTML; it reads the token from the browser's session storage)",
      tags: ["page"],
      security: [],
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
      responses: {
        200: { description: "The page", content: { "text/html": { schema: { type: "string" } } } },
        429: { description: "Too many requests from this address: see Retry-After", content: ERROR_CONTENT },
      },
    },
  };
  return {
    openapi: "3.1.0",
    info: { ...info, description: "The mortgage sign-off engine's HTTP API. Amounts are decimal strings of integers in the asset's smallest unit. Errors are { error: { code, message, details } }." },
    servers: [{ url: "/" }],
    components: {
      securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", description: "A principal's token, msk_..." } },
    },
    paths,
  };
}
