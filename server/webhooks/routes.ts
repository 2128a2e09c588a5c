/**
 * The webhooks API: a principal's subscriptions (its own only: another's is 404), their secrets, the delivery
 * log and redelivery. Thin handlers over the store; the dispatcher and the worker do the rest.
 */
import type { Principal } from "../auth/principals";
import { badRequest, notFound } from "../errors";
import { ErrorResponse } from "../schemas";
import { defineRoute, type AnyRouteSpec } from "../routes/define";
import {
  CreateWebhookBody,
  DeliveryList,
  DeliveryParams,
  DeliveryQuery,
  DeliveryRecord,
  RotatedSecret,
  Webhook,
  WebhookList,
  WebhookParams,
  WebhookWithSecret,
} from "./schemas";
import type { WebhookService } from "./service";
import { newSecret } from "./signer";
import type { Delivery, Subscription, WebhookStore } from "./store";
import { refusalOf } from "./url-guard";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function webhookOf(s: Subscription) {
  return {
    id: s.id,
    url: s.url,
    eventTypes: s.eventTypes,
    businessDaysBefore: s.businessDaysBefore,
    description: s.description,
    createdAt: iso(s.createdAt),
    status: s.disabledAt === null ? "active" : "disabled",
    disabledAt: iso(s.disabledAt),
    disabledReason: s.disabledReason,
  };
}

function deliveryOf(store: WebhookStore, d: Delivery) {
  return {
    id: d.id,
    seq: d.seq,
    type: d.type,
    caseId: d.caseId,
    status: d.status,
    occurredAt: iso(d.occurredAt),
    createdAt: iso(d.createdAt),
    deliveredAt: iso(d.deliveredAt),
    attempts: store.attemptsOf(d.id).map((a) => ({
      n: a.n,
      at: iso(a.startedAt),
      durationMs: a.durationMs,
      statusCode: a.statusCode,
      error: a.error,
    })),
    lastStatusCode: d.lastStatusCode,
    lastError: d.lastError,
    nextAttemptAt: d.status === "pending" ? iso(d.nextAttemptAt) : null,
    payload: JSON.parse(d.body),
  };
}

const NOT_YOURS = "no such webhook subscription of yours";

export function webhookRoutes(service: WebhookService): AnyRouteSpec[] {
  const { store } = service;
  const own = (principal: Principal, id: string): Subscription => {
    const s = store.subscription(id);
    if (!s || s.principalId !== principal.id) throw notFound(NOT_YOURS, { id });
    return s;
  };
  return [
    defineRoute({
      method: "post",
      path: "/webhooks",
      tag: "webhooks",
      summary: "Subscribe a URL to case events",
      description:
        "Deliveries follow the Standard Webhooks specification: headers `webhook-id`, `webhook-timestamp`, `webhook-signature` " +
        "(`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` with the secret's base64 key), body `{type, timestamp, data}`. " +
        "At least once (de-duplicate by `webhook-id`), in order per case, retried with exponential backoff and jitter for up to a day, " +
        "after which the subscription is disabled with the reason. Events of the cases the caller is a party of (the operator: all), " +
        "from the moment it subscribes. The secret is shown once, in this answer.",
      auth: true,
      body: CreateWebhookBody,
      responses: {
        201: { description: "The subscription, with its secret", schema: WebhookWithSecret },
        400: { description: "Not a valid request, or a URL that is refused", schema: ErrorResponse },
      },
      handler: async ({ body, principal }) => {
        const refusal = await refusalOf(body.url, service.settings.allowPrivateUrls);
        if (refusal) throw badRequest(`url: ${refusal}`, { field: "url", reason: "URL_REFUSED" });
        const secret = newSecret();
        const subscription = store.createSubscription(
          {
            principalId: principal.id,
            url: body.url,
            eventTypes: [...new Set(body.eventTypes)],
            businessDaysBefore: body.eventTypes.includes("deadline.approaching")
              ? (body.businessDaysBefore ?? 1)
              : null,
            description: body.description ?? null,
            from: service.dispatcher.position(),
          },
          secret,
          Date.now(),
        );
        service.subscriptionsChanged();
        return { status: 201, body: { ...webhookOf(subscription), secret } };
      },
    }),
    defineRoute({
      method: "get",
      path: "/webhooks",
      tag: "webhooks",
      summary: "The caller's subscriptions",
      auth: true,
      responses: { 200: { description: "Its subscriptions (never their secrets)", schema: WebhookList } },
      handler: ({ principal }) => ({
        status: 200,
        body: { webhooks: store.subscriptionsOf(principal.id).map(webhookOf) },
      }),
    }),
    defineRoute({
      method: "get",
      path: "/webhooks/:id",
      tag: "webhooks",
      summary: "One subscription",
      auth: true,
      params: WebhookParams,
      responses: {
        200: { description: "The subscription", schema: Webhook },
        404: { description: "No such subscription of the caller's", schema: ErrorResponse },
      },
      handler: ({ params, principal }) => ({ status: 200, body: webhookOf(own(principal, params.id)) }),
    }),
    defineRoute({
      method: "delete",
      path: "/webhooks/:id",
      tag: "webhooks",
      summary: "Unsubscribe",
      description: "Nothing more is delivered to it, retries included.",
      auth: true,
      params: WebhookParams,
      responses: {
        200: { description: "The subscription as it was", schema: Webhook },
        404: { description: "No such subscription of the caller's", schema: ErrorResponse },
      },
      handler: ({ params, principal }) => {
        const s = own(principal, params.id);
        store.deleteSubscription(s.id, Date.now());
        return { status: 200, body: webhookOf(s) };
      },
    }),
    defineRoute({
      method: "post",
      path: "/webhooks/:id/secret",
      tag: "webhooks",
      summary: "Rotate the secret",
      description:
        "A new secret, shown once. During the grace period every delivery carries two signatures (the specification allows several), " +
        "one with the new secret and one with the old, so a receiver may switch at its own pace.",
      auth: true,
      params: WebhookParams,
      responses: {
        200: { description: "The new secret", schema: RotatedSecret },
        404: { description: "No such subscription of the caller's", schema: ErrorResponse },
      },
      handler: ({ params, principal }) => {
        const s = own(principal, params.id);
        const secret = newSecret();
        const now = Date.now();
        const graceEndsAt = now + service.settings.secretGraceMs;
        store.rotateSecret(s.id, secret, now, graceEndsAt);
        return { status: 200, body: { id: s.id, secret, previousSecretsExpireAt: iso(graceEndsAt) } };
      },
    }),
    defineRoute({
      method: "get",
      path: "/webhooks/:id/deliveries",
      tag: "webhooks",
      summary: "The delivery log",
      description:
        "Newest first: each delivery's attempts (time, duration, response code or error), its status and next retry.",
      auth: true,
      params: WebhookParams,
      query: DeliveryQuery,
      responses: {
        200: { description: "A page of the log; `next` is the `before` of the next page", schema: DeliveryList },
        404: { description: "No such subscription of the caller's", schema: ErrorResponse },
      },
      handler: ({ params, query, principal }) => {
        const s = own(principal, params.id);
        const limit = query.limit ?? 50;
        const page = store.deliveriesOf(s.id, limit, query.before);
        return {
          status: 200,
          body: {
            deliveries: page.map((d) => deliveryOf(store, d)),
            next: page.length === limit ? page[page.length - 1].seq : null,
          },
        };
      },
    }),
    defineRoute({
      method: "post",
      path: "/webhooks/:id/deliveries/:deliveryId/redeliver",
      tag: "webhooks",
      summary: "Send a delivery again",
      description:
        "The same message (the same `webhook-id`), sent again now with a fresh retry window; a disabled subscription receives again.",
      auth: true,
      params: DeliveryParams,
      responses: {
        202: { description: "Queued", schema: DeliveryRecord },
        404: { description: "No such subscription or delivery of the caller's", schema: ErrorResponse },
      },
      handler: ({ params, principal }) => {
        const s = own(principal, params.id);
        const d = store.delivery(s.id, params.deliveryId);
        if (!d) throw notFound("no such delivery of this subscription", { id: params.deliveryId });
        const now = Date.now();
        store.redeliver(d.id, now);
        if (s.disabledAt !== null) store.enable(s.id);
        service.subscriptionsChanged();
        return { status: 202, body: deliveryOf(store, store.delivery(s.id, d.id)!) };
      },
    }),
  ];
}
