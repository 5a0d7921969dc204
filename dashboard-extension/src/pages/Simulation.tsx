/** "Try before publishing": replay the last days of real events through the draft (flowSimulate), with progress. */
import { Box, Button, Text } from "@saleor/macaw-ui";
import { useEffect, useState } from "react";
import { Bar, BarChart, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { gql } from "../api";
import { formatNumber } from "../format";
import { Card, ErrorState, Table } from "../ui";

type Simulation = { id: string; status: string; progress: number; result: any; error: string | null };
const FIELDS = "id status progress result error";

export function SimulationPanel({ flowId, beforeRun, onClose }: { flowId: string; beforeRun: () => Promise<boolean>; onClose: () => void }) {
  const [days, setDays] = useState("30");
  const [sim, setSim] = useState<Simulation | null>(null);
  const [error, setError] = useState("");

  useEffect(() => {
    if (!sim || sim.status === "DONE" || sim.status === "FAILED") return;
    const timer = setTimeout(async () => {
      try {
        const data = await gql(`query($id: ID!) { flowSimulation(id: $id) { ${FIELDS} } }`, { id: sim.id });
        setSim(data.flowSimulation);
      } catch (e) {
        setError((e as Error).message);
      }
    }, 700);
    return () => clearTimeout(timer);
  }, [sim]);

  async function run() {
    setError("");
    if (!(await beforeRun())) return;
    try {
      const data = await gql(`mutation($id: ID!, $days: Int!) { flowSimulate(id: $id, days: $days) { errors { field message } simulation { ${FIELDS} } } }`, { id: flowId, days: Number(days) });
      const r = data.flowSimulate;
      if (r.errors.length) setError(r.errors.map((e: { message: string }) => e.message).join(" "));
      else setSim(r.simulation);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  const result = sim?.status === "DONE" ? sim.result : null;
  const perDay = result ? Object.entries(result.messages_per_day ?? {}).map(([day, counts]) => ({ day, ...(counts as object) })) : [];
  const channels = [...new Set(perDay.flatMap((d) => Object.keys(d).filter((k) => k !== "day")))];
  return (
    <Card title="Simulation: who would have entered" actions={<Button size="small" variant="tertiary" onClick={onClose}>Close</Button>} data-testid="simulation">
      <Box display="flex" gap={2} alignItems="flex-end" flexWrap="wrap">
        <label><Text size={2}>Replay the last (days)</Text><br /><input className="flows-input" type="number" min={1} max={365} value={days} onChange={(e) => setDays(e.target.value)} /></label>
        <Button onClick={run} disabled={Boolean(sim && !result && sim.status !== "FAILED")}>Run simulation</Button>
      </Box>
      {error && <ErrorState message={error} />}
      {sim && !result && sim.status !== "FAILED" && (
        <Box display="flex" flexDirection="column" gap={1}>
          <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(sim.progress * 100)}><div style={{ width: `${Math.round(sim.progress * 100)}%` }} /></div>
          <Text size={2}>{sim.status === "QUEUED" ? "Queued…" : `${Math.round(sim.progress * 100)} %`}</Text>
        </Box>
      )}
      {sim?.status === "FAILED" && <ErrorState message={sim.error || "The simulation failed."} />}
      {result && (
        <>
          <Text>{formatNumber(result.entered.count)} entries by {formatNumber(result.entered.contacts)} contact(s) from {formatNumber(result.events_scanned)} events; {formatNumber(result.active_at_end)} still in the flow at the end.</Text>
          <Table caption="Steps" columns={["Step", "Type", "Reached", "Sent", "Skipped", "Branches"]}
            rows={Object.entries(result.steps).map(([id, s]: [string, any]) => [id, s.type, formatNumber(s.reached), s.sent ?? "–", s.skipped ?? "–",
              Object.entries(result.branches?.[id] ?? {}).map(([b, c]) => `${b}: ${c}`).join(", ") || "–"])} />
          {perDay.length > 0 && (
            <Box style={{ height: 200 }} role="img" aria-label="Messages per day">
              <ResponsiveContainer width="100%" height="100%">
                <BarChart data={perDay}><XAxis dataKey="day" fontSize={11} /><YAxis fontSize={11} allowDecimals={false} /><Tooltip /><Legend />
                  {channels.map((c, i) => <Bar key={c} dataKey={c} stackId="m" fill={["#3b82f6", "#22a06b", "#f59e0b"][i % 3]} isAnimationActive={false} />)}
                </BarChart>
              </ResponsiveContainer>
            </Box>
          )}
        </>
      )}
    </Card>
  );
}
