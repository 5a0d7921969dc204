/**
 * The Dashboard's WIDGET extensions: CUSTOMER_DETAILS_WIDGETS and ORDER_DETAILS_WIDGETS. The Dashboard
 * adds the entity's id to the iframe URL's query string (`customerId`: the Saleor User's global id,
 * `orderId`). The plugin keeps each contact's Saleor user id, so the customer widget finds the contact
 * with the flows API alone (`contacts(filter: {userId})`); `email` works too, outside the Dashboard.
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

const BY_EMAIL = `query($email: String) { contact(email: $email) { ${CONTACT_FIELDS} } }`;
const BY_CUSTOMER = `query($userId: ID!) { contacts(filter: { userId: $userId }, first: 1) { edges { node { ${CONTACT_FIELDS} } } } }`;

export function CustomerWidget() {
  const ref = useAutoHeight();
  const email = pageParam("email");
  const customerId = pageParam("customerId");
  const found = useQuery<{ contact?: any; contacts?: { edges: { node: any }[] } }>(
    email ? BY_EMAIL : BY_CUSTOMER, email ? { email } : { userId: customerId }, Boolean(email || customerId));
  const contact = found.data && (email ? found.data.contact : found.data.contacts?.edges[0]?.node);
  return (
    <Box ref={ref} padding={2} display="flex" flexDirection="column" gap={2}>
      {!customerId && !email && <EmptyState title="No customer given" />}
      {found.loading && <Loading />}
      {found.error && <ErrorState message={found.error} />}
      {found.data && !contact && <Text color="default2">This customer has not been in any flow yet.</Text>}
      {contact && <ContactPanels contact={contact} onChange={found.reload} compact />}
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
