import { Box, Button, Text } from "@saleor/macaw-ui";
import { useState } from "react";
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { fillDays, firstAmount, formatMoney, formatNumber, formatPercent, humanize, isoDaysAgo } from "../format";
import { href, pageParam } from "../router";
import { useSession } from "../session";
import { Card, EmptyState, ErrorState, Loading, PageHeader, Table, useQuery } from "../ui";

type Counts = Record<string, number>;
type StepRow = { id: string; type: string; reached: number; states: Counts; skip_reasons: Counts; branches: Counts;
  messages: Counts; rates: Record<string, number | null>; orders: number; revenue: Record<string, string> };
type FlowReport = { flow: { name: string; status: string }; since: string | null; until: string | null;
  totals: Counts & { revenue: Record<string, string>; rates: Record<string, number | null>; held_out: number };
  skips: Counts; exits: Counts; sent_by_basis?: Counts; steps: StepRow[]; days: (Counts & { day: string; revenue: Record<string, string> })[] };

const REPORT = `query($id: ID!, $since: Date, $until: Date, $version: Int) {
  flow(id: $id) { id name status versions { number } }
  flowReport(id: $id, since: $since, until: $until, version: $version)
  flowHoldoutReport(id: $id) }`;
/** The consent rule each marketing message went out under (docs/consent.md), as the report counts them. */
const BASIS: Record<string, string> = { consent: "consent (subscribed)", soft_opt_in: "soft opt-in (customers)",
  opt_out: "opt-out (nobody said no)", unknown: "not recorded" };
const SPLIT = `query($id: ID!, $step: String!) { flowSplitReport(id: $id, stepId: $step) }`;

/** The funnel a merchant reads top-down: who entered, got a message, opened, clicked, bought. */
export function funnelOf(totals: Counts): { stage: string; count: number }[] {
  return [
    { stage: "Entered", count: totals.entered ?? 0 },
    { stage: "Sent", count: totals.sent ?? 0 },
    { stage: "Delivered", count: totals.delivered ?? 0 },
    { stage: "Opened", count: totals.opened ?? 0 },
    { stage: "Clicked", count: totals.clicked ?? 0 },
    { stage: "Ordered", count: totals.orders ?? 0 },
  ];
}

function moneyList(map: Record<string, string> | undefined) {
  return Object.entries(map ?? {}).map(([currency, amount]) => ({ currency, amount }));
}

export function Report({ flowId }: { flowId: string }) {
  const { locale } = useSession();
  // A link may carry its range: #/flows/<id>/report?since=2026-01-01&until=2026-01-31.
  const [since, setSince] = useState(() => pageParam("since") || isoDaysAgo(29));
  const [until, setUntil] = useState(() => pageParam("until") || isoDaysAgo(0));
  const [version, setVersion] = useState<number | null>(null);
  const rangeError = since && until && since > until ? "The start date must be on or before the end date." : "";
  const report = useQuery<{ flow: { name: string; status: string; versions: { number: number }[] } | null; flowReport: FlowReport; flowHoldoutReport: any }>(
    REPORT, { id: flowId, since: since || null, until: until || null, version }, !rangeError);

  const presets: [string, number][] = [["7 days", 6], ["30 days", 29], ["90 days", 89]];
  return (
    <Box display="flex" flexDirection="column" gap={4}>
      <PageHeader title={report.data?.flow ? `${report.data.flow.name}: report` : "Report"}
        subtitle={<a className="flows-link" href={href({ name: "builder", flowId })}>← Back to the flow</a>} />
      <Card title="Date range">
        <Box display="flex" gap={3} alignItems="flex-end" flexWrap="wrap">
          <label><Text size={2}>From</Text><br /><input className="flows-input" type="date" value={since} max={until} onChange={(e) => setSince(e.target.value)} aria-describedby="range-error" /></label>
          <label><Text size={2}>To</Text><br /><input className="flows-input" type="date" value={until} onChange={(e) => setUntil(e.target.value)} /></label>
          {presets.map(([label, days]) => (
            <Button key={label} size="small" variant="secondary" onClick={() => { setSince(isoDaysAgo(days)); setUntil(isoDaysAgo(0)); }}>{label}</Button>
          ))}
          <label><Text size={2}>Version</Text><br />
            <select className="flows-select" value={version ?? ""} onChange={(e) => setVersion(e.target.value ? Number(e.target.value) : null)}>
              <option value="">All versions</option>
              {report.data?.flow?.versions.map((v) => <option key={v.number} value={v.number}>v{v.number}</option>)}
            </select>
          </label>
        </Box>
        {rangeError && <Text id="range-error" role="alert" color="critical1">{rangeError}</Text>}
      </Card>
      {report.loading && <Loading />}
      {report.error && <ErrorState message={report.error} onRetry={report.reload} />}
      {report.data && !report.data.flow && <EmptyState title="This flow does not exist" />}
      {report.data?.flow && <ReportBody flowId={flowId} report={report.data.flowReport} holdout={report.data.flowHoldoutReport} locale={locale} since={since} until={until} />}
    </Box>
  );
}

function ReportBody({ flowId, report, holdout, locale, since, until }: { flowId: string; report: FlowReport; holdout: any; locale: string; since: string; until: string }) {
  const t = report.totals;
  const n = (v: number | undefined) => formatNumber(v ?? 0, locale);
  const days = fillDays(report.days.map((d) => ({ ...d, revenue: firstAmount(moneyList(d.revenue)) })), since, until,
    (day) => ({ day, revenue: 0, sent: 0, opened: 0, clicked: 0, orders: 0 }) as never);
  const currency = moneyList(t.revenue)[0]?.currency;
  if (!t.entered && !t.sent && !report.days.length) {
    return <EmptyState title="No data in this range yet"><Text color="default2">Numbers appear once contacts enter the flow.</Text></EmptyState>;
  }
  return (
    <>
      <Card title="Totals" data-testid="report-totals">
        <Table caption="Totals" columns={["Entered", "Active", "Sent", "Delivered", "Opens (machine)", "Clicks", "Orders", "Revenue", "Unsubscribes", "Bounces"]}
          rows={[[n(t.entered), n(t.active), n(t.sent), n(t.delivered), `${n(t.opened)} (${n(t.machine_opened)})`, n(t.clicked), n(t.orders),
            moneyList(t.revenue).map((m) => formatMoney(m, locale)).join(" · ") || "–", n(t.unsubscribed), n(t.bounced)]]} />
        <Text size={2} color="default2">Open rate {formatPercent(t.rates?.open_rate)} · click rate {formatPercent(t.rates?.click_rate)} · conversion {formatPercent(t.rates?.conversion_rate)}</Text>
      </Card>
      <div className="flows-two">
        <Card title="Per day">
          <Box style={{ height: 260 }} data-testid="chart-days" role="img" aria-label="Messages, opens, clicks and orders per day">
            <ResponsiveContainer width="100%" height="100%">
              <LineChart data={days} margin={{ left: 0, right: 8 }}>
                <CartesianGrid strokeDasharray="3 3" opacity={0.3} />
                <XAxis dataKey="day" fontSize={11} />
                <YAxis fontSize={11} allowDecimals={false} />
                <Tooltip />
                <Legend />
                <Line type="monotone" dataKey="sent" name="Sent" stroke="#3b82f6" isAnimationActive={false} />
                <Line type="monotone" dataKey="opened" name="Opened" stroke="#a855f7" isAnimationActive={false} />
                <Line type="monotone" dataKey="clicked" name="Clicked" stroke="#f59e0b" isAnimationActive={false} />
                <Line type="monotone" dataKey="orders" name="Orders" stroke="#22a06b" isAnimationActive={false} />
              </LineChart>
            </ResponsiveContainer>
          </Box>
          {currency && <Box style={{ height: 160 }} data-testid="chart-revenue" role="img" aria-label={`Revenue per day in ${currency}`}>
            <ResponsiveContainer width="100%" height="100%">
              <BarChart data={days}><XAxis dataKey="day" fontSize={11} /><YAxis fontSize={11} /><Tooltip /><Bar dataKey="revenue" name={`Revenue (${currency})`} fill="#22a06b" isAnimationActive={false} /></BarChart>
            </ResponsiveContainer>
          </Box>}
        </Card>
        <Card title="Funnel">
          <Box style={{ height: 260 }} data-testid="chart-funnel" role="img" aria-label="Funnel from entered to ordered">
            <ResponsiveContainer width="100%" height="100%">
              <BarChart data={funnelOf(t)} layout="vertical" margin={{ left: 10 }}>
                <XAxis type="number" fontSize={11} allowDecimals={false} /><YAxis type="category" dataKey="stage" fontSize={11} width={70} />
                <Tooltip /><Bar dataKey="count" name="People / messages" fill="#3b82f6" isAnimationActive={false} />
              </BarChart>
            </ResponsiveContainer>
          </Box>
        </Card>
      </div>
      <Card title="Steps and branches">
        <Table caption="Per step" columns={["Step", "Type", "Reached", "Sent", "Opened", "Clicked", "Orders", "Branches", "Skipped (reason)"]}
          rows={report.steps.map((s) => [s.id, humanize(s.type), n(s.reached), n(s.messages.sent), n(s.messages.opened), n(s.messages.clicked), n(s.orders),
            Object.entries(s.branches).map(([b, c]) => `${b}: ${c}`).join(", ") || "–",
            Object.entries(s.skip_reasons).map(([r, c]) => `${r}: ${c}`).join(", ") || "–"])} />
        {Object.keys(report.exits ?? {}).length > 0 && <Text size={2} color="default2">Exits: {Object.entries(report.exits).map(([r, c]) => `${r} ${c}`).join(", ")}</Text>}
        {Object.keys(report.sent_by_basis ?? {}).length > 0 && <Text size={2} color="default2" data-testid="sent-by-basis">Marketing messages sent under: {Object.entries(report.sent_by_basis!).map(([b, c]) => `${BASIS[b] ?? b} ${n(c)}`).join(", ")}</Text>}
      </Card>
      {report.steps.filter((s) => s.type === "random_split").map((s) => <SplitCard key={s.id} flowId={flowId} stepId={s.id} locale={locale} />)}
      <HoldoutCard holdout={holdout} locale={locale} />
    </>
  );
}

function SplitCard({ flowId, stepId, locale }: { flowId: string; stepId: string; locale: string }) {
  const split = useQuery<{ flowSplitReport: any }>(SPLIT, { id: flowId, step: stepId });
  const data = split.data?.flowSplitReport;
  const metric = data?.auto_winner?.metric ?? "click_rate";
  return (
    <Card title={`A/B split: ${stepId}`}>
      {split.loading && <Loading />}
      {split.error && <ErrorState message={split.error} />}
      {data && (
        <>
          <Table caption="Variants" columns={["Variant", "Weight", "Recipients", "Sent", "Clicks", "Orders", `Probability best (${humanize(metric)})`]}
            rows={data.variants.map((v: any) => [v.name, v.weight, formatNumber(v.recipients ?? 0, locale), formatNumber(v.sent ?? 0, locale),
              formatNumber(v.clicked ?? 0, locale), formatNumber(v.orders ?? 0, locale), formatPercent(v.probability_best?.[metric])])} />
          {data.winner && <Text color="success1">Winner: {data.winner.variant} ({formatPercent(data.winner.probability)})</Text>}
        </>
      )}
    </Card>
  );
}

function HoldoutCard({ holdout, locale }: { holdout: any; locale: string }) {
  if (!holdout || !holdout.holdout_percent && !holdout.holdout?.entrants) {
    return <Card title="Holdout lift"><Text color="default2">No holdout group: set a holdout percentage on the flow to measure its lift.</Text></Card>;
  }
  const lift = holdout.conversion_lift ?? {};
  return (
    <Card title="Holdout lift">
      <Table caption="Holdout" columns={["Group", "Entrants", "Converted", "Conversion"]}
        rows={[["Treated", formatNumber(holdout.treated.entrants, locale), formatNumber(holdout.treated.converted, locale), formatPercent(holdout.treated.conversion_rate)],
          ["Held out", formatNumber(holdout.holdout.entrants, locale), formatNumber(holdout.holdout.converted, locale), formatPercent(holdout.holdout.conversion_rate)]]} />
      <Text>Conversion lift {formatPercent(lift.difference)} (95 % interval {formatPercent(lift.low)} to {formatPercent(lift.high)})</Text>
    </Card>
  );
}
