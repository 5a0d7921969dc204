/**
 * The Dashboard's WIDGET extensions: CUSTOMER_DETAILS_WIDGETS and ORDER_DETAILS_WIDGETS. The Dashboard
 * passes the entity's id in the iframe URL (`customerId` / `orderId`). The flows API knows contacts by
 * email, so the customer widget asks Saleor's own API (AppBridge's `saleorApiUrl`, with the same
 * token; the App holds MANAGE_USERS) for the customer's email first.
 */
import { Box, Text } from "@saleor/macaw-ui";
import { useEffect, useRef, useState } from "react";
import { formatDate, formatMoney } from "../format";
import { href, pageParam } from "../router";
import { reportHeight, useSession } from "../session";
import { EmptyState, ErrorState, Loading, useQuery } from "../ui";
import { CONTACT_FIELDS, ContactPanels } from "./Contacts";

function useAutoHeight() {
  const session = useSession();
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!ref.current || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(([entry]) => reportHeight(session, entry.contentRect.height + 16));
    observer.observe(ref.current);
    return () => observer.disconnect();
  }, [session]);
  return ref;
}

export function CustomerWidget() {
  const ref = useAutoHeight();
  const session = useSession();
  const customerId = pageParam("customerId");
  const [email, setEmail] = useState<string | null>(pageParam("email"));
  const [lookupError, setLookupError] = useState("");
  useEffect(() => {
    if (email || !customerId || !session.token) return;
    const saleorApiUrl = session.bridge?.getState().saleorApiUrl || pageParam("saleorApiUrl");
    if (!saleorApiUrl) return setLookupError("The Dashboard did not say where Saleor's API is.");
    customerEmail(saleorApiUrl, session.token, customerId).then(setEmail, (e: Error) => setLookupError(e.message));
  }, [customerId, email, session]);
  const contact = useQuery<{ contact: any }>(`query($email: String) { contact(email: $email) { ${CONTACT_FIELDS} } }`, { email }, Boolean(email));
  return (
    <Box ref={ref} padding={2} display="flex" flexDirection="column" gap={2}>
      {!customerId && !email && <EmptyState title="No customer given" />}
      {(contact.loading || (!email && customerId && !lookupError)) && <Loading />}
      {(lookupError || contact.error) && <ErrorState message={(lookupError || contact.error)!} />}
      {contact.data && !contact.data.contact && <Text color="default2">This customer has not been in any flow yet.</Text>}
      {contact.data?.contact && <ContactPanels contact={contact.data.contact} onChange={contact.reload} compact />}
    </Box>
  );
}

export function OrderWidget() {
  const ref = useAutoHeight();
  const { locale } = useSession();
  const orderId = pageParam("orderId");
  const attribution = useQuery<{ orderAttribution: any }>(
    `query($id: ID!) { orderAttribution(orderId: $id) { flow { id name } stepId touch touchedAt subject sentAt amount currency orderedAt } }`,
    { id: orderId }, Boolean(orderId));
  const a = attribution.data?.orderAttribution;
  return (
    <Box ref={ref} padding={2} display="flex" flexDirection="column" gap={2}>
      {!orderId && <EmptyState title="No order given" />}
      {attribution.loading && <Loading />}
      {attribution.error && <ErrorState message={attribution.error} />}
      {attribution.data && !a && <Text color="default2">No flow message is credited with this order.</Text>}
      {a && (
        <Box display="flex" flexDirection="column" gap={1}>
          <Text fontWeight="bold">Credited to <a className="flows-link" href={href({ name: "report", flowId: a.flow.id })} target="_blank" rel="noreferrer">{a.flow.name}</a></Text>
          <Text>“{a.subject}” ({a.stepId}), {a.touch} {formatDate(a.touchedAt, locale)}</Text>
          <Text color="default2">{formatMoney({ currency: a.currency, amount: a.amount }, locale)} ordered {formatDate(a.orderedAt, locale)}</Text>
        </Box>
      )}
    </Box>
  );
}

/** The customer's email from Saleor's API (`user(id)`), with the token the Dashboard gave the App. */
export async function customerEmail(saleorApiUrl: string, token: string, customerId: string): Promise<string> {
  const response = await fetch(saleorApiUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: "query($id: ID!) { user(id: $id) { email } }", variables: { id: customerId } }),
  });
  const body = await response.json().catch(() => ({}));
  const email = body?.data?.user?.email;
  if (!email) throw new Error(body?.errors?.[0]?.message ?? "Saleor did not return this customer's email.");
  return email;
}
