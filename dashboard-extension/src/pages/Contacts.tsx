import { Box, Button, Input, Text } from "@saleor/macaw-ui";
import { useEffect, useState } from "react";
import { gql } from "../api";
import { formatDate, formatNumber, humanize } from "../format";
import { href } from "../router";
import { useSession } from "../session";
import { Badge, Card, EmptyState, ErrorState, Loading, PageHeader, STATUS_TONE, Table, useQuery } from "../ui";

const SEARCH = `query($search: String) { contacts(filter: { search: $search }, first: 50) { totalCount
  edges { node { id email phone firstName lastName orderCount consent { email { status } sms { status } } } } } }`;

export const CONTACT_FIELDS = `id email phone firstName lastName locale orderCount totalSpent currency suppressed suppressedReason tags lists
  consent { email { status source at } sms { status source at } }
  consentChanges { channel status source ip userAgent detail at }
  journeys { id status exitReason enteredAt finishedAt currentStep flow { id name } }
  trail(limit: 200) { at kind flowSlug stepId text }`;

export function Contacts({ contactId }: { contactId?: string }) {
  return contactId ? <ContactDetail id={contactId} /> : <ContactSearch />;
}

function useDebounced<T>(value: T, ms = 300): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return debounced;
}

function ContactSearch() {
  const { locale } = useSession();
  const [search, setSearch] = useState("");
  const term = useDebounced(search.trim());
  const list = useQuery<{ contacts: { totalCount: number; edges: { node: any }[] } }>(SEARCH, { search: term || null });
  return (
    <Box display="flex" flexDirection="column" gap={4}>
      <PageHeader title="Contacts" subtitle="Everyone the flows know: consent with its proof, journeys and why each message went (or did not)." />
      <Box style={{ maxWidth: 480 }}><Input label="Search by email, phone or name" value={search} onChange={(e) => setSearch(e.target.value)} type="text" aria-label="Search contacts" /></Box>
      {list.loading && <Loading />}
      {list.error && <ErrorState message={list.error} onRetry={list.reload} />}
      {list.data && list.data.contacts.edges.length === 0 && <EmptyState title={term ? `No contact matches “${term}”` : "No contacts yet"} />}
      {list.data && list.data.contacts.edges.length > 0 && (
        <Card title={`${formatNumber(list.data.contacts.totalCount, locale)} contact(s)`}>
          <Table caption="Contacts" columns={["Contact", "Name", "Email consent", "SMS consent", "Orders"]}
            rows={list.data.contacts.edges.map(({ node }) => [
              <a className="flows-link" href={href({ name: "contacts", contactId: node.id })}>{node.email || node.phone || node.id}</a>,
              `${node.firstName} ${node.lastName}`.trim() || "–",
              <Badge tone={node.consent.email.status === "SUBSCRIBED" ? "success" : "neutral"}>{humanize(node.consent.email.status.toLowerCase())}</Badge>,
              <Badge tone={node.consent.sms.status === "SUBSCRIBED" ? "success" : "neutral"}>{humanize(node.consent.sms.status.toLowerCase())}</Badge>,
              formatNumber(node.orderCount, locale),
            ])} />
        </Card>
      )}
    </Box>
  );
}

function ContactDetail({ id }: { id: string }) {
  const contact = useQuery<{ contact: any }>(`query($id: ID) { contact(id: $id) { ${CONTACT_FIELDS} } }`, { id });
  return (
    <Box display="flex" flexDirection="column" gap={4}>
      {contact.loading && !contact.data && <Loading />}
      {contact.error && <ErrorState message={contact.error} onRetry={contact.reload} />}
      {contact.data && !contact.data.contact && <EmptyState title="No such contact"><a className="flows-link" href="#/contacts">All contacts</a></EmptyState>}
      {contact.data?.contact && (
        <>
          <PageHeader title={contact.data.contact.email || contact.data.contact.phone}
            subtitle={<a className="flows-link" href="#/contacts">← All contacts</a>} />
          <ContactPanels contact={contact.data.contact} onChange={contact.reload} />
        </>
      )}
    </Box>
  );
}

/** Consent with proof, journeys (with "exit"), why-trail: the contact page and the customer widget share it. */
export function ContactPanels({ contact, onChange, compact = false }: { contact: any; onChange: () => void; compact?: boolean }) {
  const { locale } = useSession();
  const [exitError, setExitError] = useState<Record<string, string>>({});
  async function exit(journeyId: string) {
    try {
      const data = await gql(`mutation($id: ID!) { journeyExit(id: $id) { errors { field message } journey { id status } } }`, { id: journeyId });
      const errors = data.journeyExit.errors;
      setExitError((e) => ({ ...e, [journeyId]: errors.map((x: { message: string }) => x.message).join(" ") }));
      if (!errors.length) onChange();
    } catch (error) {
      setExitError((e) => ({ ...e, [journeyId]: (error as Error).message }));
    }
  }
  const trail = compact ? contact.trail.slice(-20) : contact.trail;
  return (
    <Box display="flex" flexDirection="column" gap={4}>
      <Card title="Consent">
        <Table caption="Consent" columns={["Channel", "Status", "Source", "Since"]}
          rows={(["email", "sms"] as const).map((ch) => [ch.toUpperCase(),
            <Badge tone={contact.consent[ch].status === "SUBSCRIBED" ? "success" : "neutral"}>{humanize(contact.consent[ch].status.toLowerCase())}</Badge>,
            contact.consent[ch].source || "–", formatDate(contact.consent[ch].at, locale)])} />
        {contact.suppressed && <Text color="critical1">Suppressed: {contact.suppressedReason}</Text>}
        {contact.consentChanges.length > 0 && (
          <details>
            <summary><Text size={2}>Proof ({contact.consentChanges.length} change(s))</Text></summary>
            <Table caption="Consent proof" columns={["When", "Channel", "Status", "Source", "IP", "User agent", "Detail"]}
              rows={contact.consentChanges.map((c: any) => [formatDate(c.at, locale), c.channel, humanize(c.status.toLowerCase()), c.source, c.ip || "–",
                <Text size={1}>{c.userAgent || "–"}</Text>, <Text size={1}>{JSON.stringify(c.detail)}</Text>])} />
          </details>
        )}
      </Card>
      <Card title="Journeys">
        {contact.journeys.length === 0 ? <Text color="default2">Not in any flow.</Text> : (
          <Table caption="Journeys" columns={["Flow", "Status", "Entered", "Now at", ""]}
            rows={contact.journeys.map((j: any) => [
              compact ? j.flow.name : <a className="flows-link" href={href({ name: "builder", flowId: j.flow.id })}>{j.flow.name}</a>,
              <Badge tone={STATUS_TONE[j.status]}>{humanize(j.status.toLowerCase())}{j.exitReason && j.exitReason !== j.status.toLowerCase() ? `: ${j.exitReason}` : ""}</Badge>,
              formatDate(j.enteredAt, locale), j.currentStep || "–",
              j.status === "ACTIVE" ? <Box display="flex" flexDirection="column" gap={1}>
                <Button size="small" variant="secondary" onClick={() => exit(j.id)} aria-label={`Exit ${j.flow.name}`}>Exit flow</Button>
                {exitError[j.id] && <Text size={2} color="critical1" role="alert">{exitError[j.id]}</Text>}</Box> : null,
            ])} />
        )}
      </Card>
      <Card title="Why-trail" data-testid="why-trail">
        {trail.length === 0 ? <Text color="default2">Nothing happened to this contact in a flow yet.</Text> : (
          <Box as="ol" display="flex" flexDirection="column" gap={2} margin={0} paddingLeft={4}>
            {trail.map((entry: any, i: number) => (
              <li key={i}>
                <Text size={2} color="default2">{formatDate(entry.at, locale)} · {entry.flowSlug ?? ""}{entry.stepId ? ` / ${entry.stepId}` : ""}</Text><br />
                <Text>{entry.text}</Text>
              </li>
            ))}
          </Box>
        )}
      </Card>
    </Box>
  );
}
