/**
 * Who hears of an event: a subscription of a principal that is a party of the case (the operator: every case),
 * that asked for the event's type; an awaited sign-off or consent only the awaited party (and the operator); a
 * deadline only at the N the subscription asked for.
 */
import type { Principal } from "../auth/principals";
import type { DerivedEvent } from "./event-types";
import type { NewDelivery, Subscription } from "./store";

export interface Receiving {
  subscription: Subscription;
  principal: Principal;
}

/** The subscriptions that still receive, with their principals (a revoked principal's receive nothing). */
export function receivers(
  subscriptions: readonly Subscription[],
  principalOf: (id: string) => Principal | null,
): Receiving[] {
  const found: Receiving[] = [];
  for (const subscription of subscriptions) {
    const principal = principalOf(subscription.principalId);
    if (principal && principal.revokedAt === null) found.push({ subscription, principal });
  }
  return found;
}

export function hears(r: Receiving, event: DerivedEvent, parties: Record<string, string>): boolean {
  if (!r.subscription.eventTypes.includes(event.type)) return false;
  if (event.businessDaysBefore !== undefined && event.businessDaysBefore !== (r.subscription.businessDaysBefore ?? 1))
    return false;
  if (r.principal.role === "operator") return true;
  const me = r.principal.address.toLowerCase();
  if (event.awaitedAddress !== undefined) return event.awaitedAddress.toLowerCase() === me;
  return Object.values(parties).some((a) => a.toLowerCase() === me);
}

/** The body as sent: `{type, timestamp, data}`, the Standard Webhooks payload shape. */
export function bodyOf(event: DerivedEvent): string {
  return JSON.stringify({ type: event.type, timestamp: new Date(event.occurredAt).toISOString(), data: event.data });
}

export function deliveryFor(r: Receiving, event: DerivedEvent): NewDelivery {
  return {
    subscriptionId: r.subscription.id,
    caseId: event.caseId,
    eventKey: event.key,
    type: event.type,
    body: bodyOf(event),
    occurredAt: event.occurredAt,
  };
}
