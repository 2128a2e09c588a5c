/**
 * The webhooks API's shapes, declared once in zod: the routes validate with them and the OpenAPI document is
 * made from them (server/routes/define.ts).
 */
import { z } from "zod";
import { IsoTime } from "../../engine/value-schemas";
import { EVENT_TYPES } from "./event-types";

export const EventTypeName = z
  .enum(EVENT_TYPES)
  .describe(
    "stage.completed; signoff.awaited (your sign-off is awaited: the stage is open and accepts it); consent.awaited; " +
      "deadline.approaching (a stage's legal deadline is `businessDaysBefore` business days away in the case's calendar); " +
      "case.completed, case.expired, case.cancelled; party.credited; amendment.proposed, amendment.applied.",
  );

export const CreateWebhookBody = z.strictObject({
  url: z.string().max(2_000).describe("http(s); a loopback or private address is refused unless the server allows it."),
  eventTypes: z.array(EventTypeName).min(1).max(EVENT_TYPES.length),
  businessDaysBefore: z
    .number()
    .int()
    .min(0)
    .max(60)
    .optional()
    .describe("For deadline.approaching: how many business days before a legal deadline (default 1)."),
  description: z.string().max(200).optional(),
});
export type CreateWebhookBody = z.infer<typeof CreateWebhookBody>;

export const Webhook = z.object({
  id: z.string(),
  url: z.string(),
  eventTypes: z.array(EventTypeName),
  businessDaysBefore: z.number().int().nullable(),
  description: z.string().nullable(),
  createdAt: IsoTime,
  status: z.enum(["active", "disabled"]),
  disabledAt: IsoTime.nullable(),
  disabledReason: z
    .string()
    .nullable()
    .describe("Why deliveries stopped (a retry window that ran out, and the last error)."),
});

export const WebhookWithSecret = Webhook.extend({
  secret: z
    .string()
    .describe("`whsec_` + base64: shown only here, once. Verify deliveries with it (Standard Webhooks)."),
});

export const RotatedSecret = z.object({
  id: z.string(),
  secret: z.string().describe("The new secret, shown once."),
  previousSecretsExpireAt: IsoTime.describe("Until then deliveries carry a signature with the old secret too."),
});

export const WebhookList = z.object({ webhooks: z.array(Webhook) });

export const WebhookParams = z.strictObject({ id: z.string().max(100) });
export const DeliveryParams = z.strictObject({ id: z.string().max(100), deliveryId: z.string().max(100) });

export const DeliveryQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).optional(),
  before: z.coerce.number().int().optional().describe("The `seq` of the last item of the page before (newest first)."),
});

export const DeliveryAttempt = z.object({
  n: z.number().int(),
  at: IsoTime,
  durationMs: z.number(),
  statusCode: z.number().int().nullable(),
  error: z.string().nullable(),
});

export const DeliveryRecord = z.object({
  id: z.string().describe("The `webhook-id` header: the same on every attempt and redelivery."),
  seq: z.number().int(),
  type: EventTypeName,
  caseId: z.string().nullable(),
  status: z.enum(["pending", "delivered", "failed"]),
  occurredAt: IsoTime,
  createdAt: IsoTime,
  deliveredAt: IsoTime.nullable(),
  attempts: z.array(DeliveryAttempt),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: IsoTime.nullable().describe("While pending: when it is tried next."),
  payload: z.unknown().describe("The body as sent: `{type, timestamp, data}`."),
});

export const DeliveryList = z.object({ deliveries: z.array(DeliveryRecord), next: z.number().int().nullable() });
