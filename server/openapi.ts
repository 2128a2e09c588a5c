/**
 * The OpenAPI 3.1 document, built from the same route declarations (and zod schemas) that the server checks
 * requests with. JSON Schema 2020-12, which OpenAPI 3.1 uses, is what `z.toJSONSchema` writes. Each
 * operation lists every status it can answer: its own, plus those every request can meet (400/413/415 for a
 * body, 401 with a token, 409 for an Idempotency-Key, 429, 503 for a change); the fuzz test checks that every
 * status it sees a route answer is listed for that route.
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

/**
 * What any request that carries a body can hear before its route runs (server/media-type.ts and the JSON
 * parser answer for every path): 400 for a body that is not valid JSON, 413 for one over the limit, 415 for
 * one that is not application/json.
 */
function BODY_ANSWERS(description = "A body that is not valid JSON"): Record<string, unknown> {
  return {
    400: { description, content: ERROR_CONTENT },
    413: { description: "The request body is larger than the limit (64 kB unless configured)", content: ERROR_CONTENT },
    415: {
      description:
        "The request has a body that is not application/json (text/plain, a form, no Content-Type, ...), or a charset other than UTF-8: the type it got is in the message and details.contentType; nothing of the body was used",
      content: ERROR_CONTENT,
    },
  };
}

const RATE_LIMITED = {
  description: "Too many requests (per token; per address without one): see Retry-After",
  headers: { "Retry-After": { schema: { type: "integer" } } },
  content: ERROR_CONTENT,
};

const UNAVAILABLE = {
  description:
    "The engine or the chain cannot serve it now (CHAIN_UNAVAILABLE, ENGINE_STOPPED, TIMEOUT), or the sending key cannot pay (RELAYER_OUT_OF_FUNDS: details.address, balance, needed): retry after Retry-After",
  headers: { "Retry-After": { schema: { type: "integer" } } },
  content: ERROR_CONTENT,
};

export function buildOpenApi(
  routes: readonly AnyRouteSpec[],
  info: { title: string; version: string },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const mutation = route.method !== "get";
    const parameters = [
      ...parametersOf(route.params, "path"),
      ...parametersOf(route.query, "query"),
      ...(route.headers ?? []).map((h) => ({
        name: h.name,
        in: "header",
        required: false,
        description: h.description,
        schema: jsonSchema(h.schema),
      })),
      ...(mutation && route.auth
        ? [
            {
              name: "Idempotency-Key",
              in: "header",
              required: false,
              description: IdempotencyKeyHeader.description,
              schema: jsonSchema(IdempotencyKeyHeader),
            },
          ]
        : []),
    ];
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.schema
          ? { content: { [response.contentType ?? "application/json"]: { schema: jsonSchema(response.schema) } } }
          : {}),
      };
    }
    Object.assign(responses, {
      ...BODY_ANSWERS(
        route.params || route.query || route.body
          ? "Not a valid request: the zod field errors in details, or a body that is not valid JSON"
          : undefined,
      ),
      ...responses,
    });
    if (route.auth)
      responses["401"] = { description: "No token, or an unknown or revoked one", content: ERROR_CONTENT };
    if (mutation && route.auth)
      responses["409"] ??= {
        description: "The Idempotency-Key was used for another request, or that request is still in flight",
        content: ERROR_CONTENT,
      };
    responses["429"] = RATE_LIMITED;
    // A change goes through the engine's outbox and the chain: the engine stopping, the chain not answering, or
    // the sending key unable to pay (RELAYER_OUT_OF_FUNDS, naming the key) is a 503 to retry.
    if (mutation && route.auth) responses["503"] ??= UNAVAILABLE;
    const path = openApiPath(route.path);
    paths[path] ??= {};
    paths[path][route.method] = {
      operationId: `${route.method}${path.replace(/[{}]/g, "").replace(/(^|[/-])([a-z])/g, (_m, _s, c: string) => c.toUpperCase())}`,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [route.tag],
      security: route.auth ? [{ bearerAuth: [] }] : [],
      ...(parameters.length > 0 ? { parameters } : {}),
      // Optional where `{}` is a valid body: a request with no body at all reads as `{}`.
      ...(route.body
        ? {
            requestBody: {
              required: !route.body.safeParse({}).success,
              content: { "application/json": { schema: jsonSchema(route.body) } },
            },
          }
        : {}),
      responses,
    };
  }
  const desk = (operationId: string) => ({
    get: {
      operationId,
      summary:
        "The desk: the principal's cases, what needs it today, what is at risk (HTML; the token from session storage)",
      tags: ["page"],
      security: [],
      responses: {
        200: { description: "The page", content: { "text/html": { schema: { type: "string" } } } },
        ...BODY_ANSWERS(),
        429: RATE_LIMITED,
      },
    },
  });
  paths["/ui"] = desk("getUi");
  paths["/ui/"] = desk("getUiSlash");
  paths["/ui/cases/{id}"] = {
    get: {
      operationId: "getUiCasesId",
      summary: "The buyer's progress page of a case (HTML; it reads the token from the browser's session storage)",
      tags: ["page"],
      security: [],
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
      responses: {
        200: { description: "The page", content: { "text/html": { schema: { type: "string" } } } },
        ...BODY_ANSWERS(),
        429: RATE_LIMITED,
      },
    },
  };
  return {
    openapi: "3.1.0",
    info: {
      ...info,
      description:
        "The mortgage sign-off engine's HTTP API. Amounts are decimal strings of integers in the asset's smallest unit; a case's terms keep price <= deposit + loan. Errors are { error: { code, message, details } }. A request body must be application/json (a charset parameter is fine): any other type, or a body without a Content-Type, is 415; a request with no body at all reads as {}. Every POST and DELETE honours Idempotency-Key; POST /cases is idempotent without one too (its key derived from the caller and the body).",
    },
    servers: [{ url: "/" }],
    components: {
      securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", description: "A principal's token, msk_..." } },
    },
    paths,
  };
}
