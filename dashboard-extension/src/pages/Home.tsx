import { Box, Button, Text } from "@saleor/macaw-ui";
import { Area, AreaChart, ResponsiveContainer, Tooltip } from "recharts";
import { useState } from "react";
import { gql } from "../api";
import { firstAmount, formatDate, formatNumber, formatRevenue, humanize, type Money } from "../format";
import { href, navigate } from "../router";
import { useSession } from "../session";
import { Badge, Card, EmptyState, ErrorState, Loading, PageHeader, STATUS_TONE, Table, useQuery } from "../ui";
import { emptyDefinition } from "../flowGraph";

const HOME = `query Home($days: Int) {
  dashboardHome(days: $days) {
    since until
    flows { activeNow entered sent orders revenue { currency amount }
      days { day sent orders revenue { currency amount } }
      flow { id name slug status triggerEvent hasUnpublishedChanges } }
    attention { deadEvents latestDeadEvents { name error receivedAt }
      blockedFlows { flow { id name } checks { code severity message } } }
  }
}`;

type Day = { day: string; sent: number; orders: number; revenue: Money[] };
type HomeFlow = { activeNow: number; entered: number; sent: number; orders: number; revenue: Money[]; days: Day[];
  flow: { id: string; name: string; slug: string; status: string; triggerEvent: string; hasUnpublishedChanges: boolean } };
type HomeData = { dashboardHome: { since: string; until: string; flows: HomeFlow[];
  attention: { deadEvents: number; latestDeadEvents: { name: string; error: string; receivedAt: string }[];
    blockedFlows: { flow: { id: string; name: string }; checks: { code: string; severity: string; message: string }[] }[] } } };

export function Home() {
  const { locale } = useSession();
  const home = useQuery<HomeData>(HOME, { days: 30 });
  const [creating, setCreating] = useState<string | null>(null);

  async function newFlow() {
    setCreating("");
    try {
      const data = await gql(`mutation($input: FlowCreateInput!) { flowCreate(input: $input) { flow { id } errors { field message } } }`,
        { input: { name: `New flow ${new Date().toISOString().slice(0, 16).replace("T", " ")}`, definition: emptyDefinition() } });
      const result = data.flowCreate;
      if (result.errors.length) setCreating(result.errors.map((e: { message: string }) => e.message).join(" "));
      else navigate({ name: "builder", flowId: result.flow.id });
    } catch (error) {
      setCreating((error as Error).message);
    }
  }

  const actions = (
    <>
      <Button variant="secondary" onClick={() => navigate({ name: "gallery" })}>Browse templates</Button>
      <Button onClick={newFlow} disabled={creating === ""}>New flow</Button>
    </>
  );
  return (
    <Box display="flex" flexDirection="column" gap={4}>
      <PageHeader title="Flows" subtitle="Automated email and SMS journeys: last 30 days." actions={actions} />
      {creating && <ErrorState message={creating} />}
      {home.loading && <Loading />}
      {home.error && <ErrorState message={home.error} onRetry={home.reload} />}
      {home.data && <HomeBody data={home.data.dashboardHome} locale={locale} />}
    </Box>
  );
}

function HomeBody({ data, locale }: { data: HomeData["dashboardHome"]; locale: string }) {
  const { attention } = data;
  const needsAttention = attention.deadEvents > 0 || attention.blockedFlows.length > 0;
  const totals = data.flows.reduce((t, f) => ({ sent: t.sent + f.sent, active: t.active + f.activeNow, orders: t.orders + f.orders }), { sent: 0, active: 0, orders: 0 });
  return (
    <>
      {needsAttention && (
        <Card title="Needs your attention" data-testid="attention">
          {attention.deadEvents > 0 && (
            <Text color="critical1">{formatNumber(attention.deadEvents, locale)} event(s) could not be processed (dead letters).
              {attention.latestDeadEvents[0] && ` Latest: ${attention.latestDeadEvents[0].name}: ${attention.latestDeadEvents[0].error}`}</Text>
          )}
          {attention.blockedFlows.map((blocked) => (
            <Box key={blocked.flow.id} display="flex" flexDirection="column" gap={1}>
              <a className="flows-link" href={href({ name: "builder", flowId: blocked.flow.id })}><Text fontWeight="bold">{blocked.flow.name}</Text></a>
              {blocked.checks.map((check, i) => <Text key={i} size={2} color={check.severity === "blocking" ? "critical1" : "default2"}>{check.message}</Text>)}
            </Box>
          ))}
        </Card>
      )}
      <Box display="flex" gap={4} flexWrap="wrap">
        <Stat label="Active now" value={formatNumber(totals.active, locale)} />
        <Stat label="Messages sent" value={formatNumber(totals.sent, locale)} />
        <Stat label="Attributed orders" value={formatNumber(totals.orders, locale)} />
        <Stat label="Attributed revenue" value={formatRevenue(mergeRevenue(data.flows.flatMap((f) => f.revenue)), locale)} />
      </Box>
      {data.flows.length === 0 ? (
        <EmptyState title="No flows yet">
          <Text color="default2">Start from a prebuilt journey: abandoned checkout, welcome series, win-back…</Text>
          <Button onClick={() => navigate({ name: "gallery" })}>Browse templates</Button>
        </EmptyState>
      ) : (
        <Card title="All flows">
          <Table
            caption="Flows"
            columns={["Flow", "Status", "Trigger", "Active now", "Sent (30 d)", "Revenue (30 d)", "Last 30 days", ""]}
            rows={data.flows.map((f) => [
              <a className="flows-link" href={href({ name: "builder", flowId: f.flow.id })}><Text fontWeight="bold">{f.flow.name}</Text></a>,
              <Box display="flex" gap={1} flexWrap="wrap"><Badge tone={STATUS_TONE[f.flow.status]}>{humanize(f.flow.status.toLowerCase())}</Badge>
                {f.flow.hasUnpublishedChanges && <Badge tone="warning">Unpublished changes</Badge>}</Box>,
              <Text size={2}>{humanize(f.flow.triggerEvent)}</Text>,
              formatNumber(f.activeNow, locale),
              formatNumber(f.sent, locale),
              formatRevenue(f.revenue, locale),
              <Sparkline days={f.days} name={f.flow.name} />,
              <a className="flows-link" href={href({ name: "report", flowId: f.flow.id })} aria-label={`Report for ${f.flow.name}`}>Report</a>,
            ])}
          />
          <Text size={2} color="default2">{formatDate(data.since, locale)} – {formatDate(data.until, locale)}</Text>
        </Card>
      )}
    </>
  );
}

export function mergeRevenue(list: Money[]): Money[] {
  const sums = new Map<string, number>();
  for (const m of list) sums.set(m.currency, (sums.get(m.currency) ?? 0) + Number(m.amount));
  return [...sums].map(([currency, amount]) => ({ currency, amount: amount.toFixed(2) }));
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <Box padding={4} borderRadius={4} borderWidth={1} borderStyle="solid" borderColor="default1" flexGrow="1" style={{ minWidth: 160 }}>
      <Text size={2} color="default2">{label}</Text>
      <Text as="p" size={7} fontWeight="bold">{value}</Text>
    </Box>
  );
}

function Sparkline({ days, name }: { days: Day[]; name: string }) {
  const points = days.map((d) => ({ day: d.day, sent: d.sent, revenue: firstAmount(d.revenue) }));
  return (
    <Box style={{ width: 140, height: 40 }} role="img" aria-label={`${name}: sends and revenue per day`} data-testid="sparkline">
      <ResponsiveContainer width="100%" height="100%">
        <AreaChart data={points} margin={{ top: 2, bottom: 2, left: 0, right: 0 }}>
          <Tooltip formatter={(value, key) => [value, key === "sent" ? "Sent" : "Revenue"]} labelFormatter={(_, p) => p?.[0]?.payload?.day ?? ""} />
          <Area type="monotone" dataKey="revenue" stroke="#22a06b" fill="#22a06b" fillOpacity={0.2} isAnimationActive={false} />
          <Area type="monotone" dataKey="sent" stroke="#3b82f6" fill="#3b82f6" fillOpacity={0.15} isAnimationActive={false} />
        </AreaChart>
      </ResponsiveContainer>
    </Box>
  );
}
