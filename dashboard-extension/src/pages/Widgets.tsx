/**
 * The Dashboard's WIDGET extensions: CUSTOMER_DETAILS_WIDGETS and ORDER_DETAILS_WIDGETS. The Dashboard
 * passes the entity's id in the iframe URL (`customerId` / `orderId`); the contact is found by
 * Saleor user id, falling back to email when the Dashboard passes one.
 */
import { Box, Text } from "@saleor/macaw-ui";
import { useEffect, useRef } from "react";
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
  const customerId = pageParam("customerId") ?? pageParam("contactId");
  const email = pageParam("email");
  const found = useQuery<{ contacts: { edges: { node: { id: string } }[] } }>(
    `query($search: String) { contacts(filter: { search: $search }, first: 1) { edges { node { id } } } }`,
    { search: email || customerId }, Boolean(email || customerId));
  const id = found.data?.contacts.edges[0]?.node.id;
  const contact = useQuery<{ contact: any }>(`query($id: ID) { contact(id: $id) { ${CONTACT_FIELDS} } }`, { id }, Boolean(id));
  return (
    <Box ref={ref} padding={2} display="flex" flexDirection="column" gap={2}>
      {!customerId && !email && <EmptyState title="No customer given" />}
      {(found.loading || contact.loading) && <Loading />}
      {(found.error || contact.error) && <ErrorState message={(found.error || contact.error)!} />}
      {found.data && !id && <Text color="default2">This customer has not been in any flow yet.</Text>}
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
