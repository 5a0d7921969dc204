import { Box, Button, Text } from "@saleor/macaw-ui";
import { useState } from "react";
import { gql, type FlowError } from "../api";
import { humanize } from "../format";
import { STEP_TYPES, stepLabel, type Step } from "../flowGraph";
import { href, navigate } from "../router";
import { Badge, Card, EmptyState, ErrorState, Loading, PageHeader, useQuery } from "../ui";

type GraphNode = { id: string; type: string; isStart: boolean; label: string; step: Step };
type Check = { code: string; severity: string; message: string; path?: string | null };
type Template = { slug: string; name: string; description: string; triggerEvent: string; kind: string; languages: string[];
  graph: { nodes: GraphNode[]; edges: { source: string; target: string | null; label: string | null }[] }; checks: Check[] };

const LIST = `{ flowTemplates { slug name description triggerEvent kind languages
  graph { nodes { id type isStart label step } edges { source target label } } } }`;
const ONE = `query($slug: String!, $language: String) { flowTemplate(slug: $slug) { slug name description triggerEvent kind languages
  graph { nodes { id type isStart label step } edges { source target label } }
  checks { code severity message path }
  previews(language: $language) { stepId channel subject html text sms { segments encoding } } } }`;

export function Gallery({ journeyKey }: { journeyKey?: string }) {
  return journeyKey ? <TemplateDetail slug={journeyKey} /> : <TemplateList />;
}

function TemplateList() {
  const list = useQuery<{ flowTemplates: Template[] }>(LIST);
  return (
    <Box display="flex" flexDirection="column" gap={4}>
      <PageHeader title="Templates" subtitle="Prebuilt journeys. Preview their messages, then turn one on or customize it first." />
      {list.loading && <Loading />}
      {list.error && <ErrorState message={list.error} onRetry={list.reload} />}
      {list.data && list.data.flowTemplates.length === 0 && <EmptyState title="No templates shipped" />}
      {list.data && (
        <div className="flows-grid">
          {list.data.flowTemplates.map((t) => (
            <Card key={t.slug} title={t.name} data-testid={`template-${t.slug}`}>
              <Text color="default2">{t.description}</Text>
              <Box display="flex" gap={1} flexWrap="wrap">
                <Badge tone="info">{humanize(t.triggerEvent)}</Badge>
                <Badge>{t.kind}</Badge>
                {t.languages.map((l) => <Badge key={l}>{l.toUpperCase()}</Badge>)}
              </Box>
              <StepPath template={t} compact />
              <Box><a className="flows-link" href={href({ name: "gallery", key: t.slug })}>Preview and turn on →</a></Box>
            </Card>
          ))}
        </div>
      )}
    </Box>
  );
}

/** The template's steps in the order a contact meets them, as a vertical path (branches indented). */
export function StepPath({ template, compact = false }: { template: Template; compact?: boolean }) {
  const byId = new Map(template.graph.nodes.map((n) => [n.id, n]));
  const order: GraphNode[] = [];
  const seen = new Set<string>();
  const start = template.graph.nodes.find((n) => n.isStart);
  const queue = start ? [start.id] : [];
  while (queue.length) {
    const id = queue.shift()!;
    if (seen.has(id) || !byId.has(id)) continue;
    seen.add(id);
    order.push(byId.get(id)!);
    template.graph.edges.filter((e) => e.source === id && e.target).forEach((e) => queue.push(e.target!));
  }
  const shown = compact ? order.slice(0, 8) : order;
  return (
    <Box as="ol" display="flex" flexDirection="column" gap={1} paddingLeft={0} margin={0} aria-label="Steps" style={{ listStyle: "none" }}>
      <li><Text size={2} fontWeight="bold">⚡ {humanize(template.triggerEvent)}</Text></li>
      {shown.map((n) => (
        <li key={n.id}>
          <Text size={2}>↓ {n.type in STEP_TYPES ? stepLabel(n.id, n.step) : n.label}</Text>
        </li>
      ))}
      {shown.length < order.length && <li><Text size={2} color="default2">… {order.length - shown.length} more</Text></li>}
    </Box>
  );
}

function TemplateDetail({ slug }: { slug: string }) {
  const [language, setLanguage] = useState<string | null>(null);
  const one = useQuery<{ flowTemplate: Template & { previews: { stepId: string; channel: string; subject: string; html: string; text: string; sms: { segments: number; encoding: string } | null }[] } }>(
    ONE, { slug, language });
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ errors: FlowError[]; checks: Check[] } | null>(null);
  const [previewIndex, setPreviewIndex] = useState(0);

  async function create(publish: boolean) {
    setBusy(true);
    setResult(null);
    try {
      const data = await gql(`mutation($input: FlowCreateFromTemplateInput!) { flowCreateFromTemplate(input: $input) {
        flow { id status } errors { field code message } checks { code severity message path } } }`, { input: { template: slug, publish } });
      const r = data.flowCreateFromTemplate;
      if (r.flow) navigate(publish ? { name: "home" } : { name: "builder", flowId: r.flow.id });
      else setResult({ errors: r.errors, checks: r.checks });
    } catch (error) {
      setResult({ errors: [{ message: (error as Error).message }], checks: [] });
    } finally {
      setBusy(false);
    }
  }

  if (one.loading && !one.data) return <Loading />;
  if (one.error) return <ErrorState message={one.error} onRetry={one.reload} />;
  if (!one.data?.flowTemplate) return <EmptyState title="No such template"><a className="flows-link" href="#/gallery">All templates</a></EmptyState>;
  const t = one.data.flowTemplate;
  const current = language ?? t.languages[0] ?? "en";
  const preview = t.previews[Math.min(previewIndex, t.previews.length - 1)];
  const blocking = t.checks.filter((c) => c.severity === "blocking");
  return (
    <Box display="flex" flexDirection="column" gap={4}>
      <PageHeader
        title={t.name}
        subtitle={t.description}
        actions={
          <>
            <Button variant="secondary" onClick={() => create(false)} disabled={busy}>Customize first</Button>
            <Button onClick={() => create(true)} disabled={busy || blocking.length > 0} data-testid="turn-on">Turn on</Button>
          </>
        }
      />
      <Card title="Before it goes live" data-testid="checks">
        {t.checks.length === 0 ? <Text color="success1">✓ All checks pass: the journey can send as configured.</Text> :
          t.checks.map((c, i) => (
            <Text key={i} color={c.severity === "blocking" ? "critical1" : "default2"}>{c.severity === "blocking" ? "✗" : "!"} {c.message}</Text>
          ))}
        {result?.errors.map((e, i) => <Text key={`e${i}`} role="alert" color="critical1">{e.message}</Text>)}
      </Card>
      <div className="flows-two">
        <Card title="Emails" actions={
          <Box display="flex" gap={2} alignItems="center" flexWrap="wrap">
            <label htmlFor="preview-language"><Text size={2}>Language</Text></label>
            <select id="preview-language" className="flows-select" value={current} onChange={(e) => { setLanguage(e.target.value); }}>
              {t.languages.map((l) => <option key={l} value={l}>{l.toUpperCase()}</option>)}
            </select>
          </Box>}>
          <Box display="flex" gap={2} flexWrap="wrap" role="tablist" aria-label="Messages">
            {t.previews.map((p, i) => (
              <Button key={p.stepId} role="tab" aria-selected={i === previewIndex} variant={i === previewIndex ? "primary" : "secondary"} size="small" onClick={() => setPreviewIndex(i)}>
                {i + 1}. {p.channel === "sms" ? "SMS" : p.subject.slice(0, 40)}
              </Button>
            ))}
          </Box>
          {one.loading && <Loading label="Rendering previews…" />}
          {preview && (
            <Box display="flex" flexDirection="column" gap={2}>
              <Text fontWeight="bold" data-testid="preview-subject">{preview.subject}</Text>
              {preview.channel === "sms" ? <Text>{preview.text} ({preview.sms?.segments} segment(s), {preview.sms?.encoding})</Text> :
                <iframe title={`Preview: ${preview.subject}`} className="preview-frame" sandbox="" srcDoc={preview.html} style={{ width: "100%" }} />}
            </Box>
          )}
        </Card>
        <Card title="Steps"><StepPath template={t} /></Card>
      </div>
    </Box>
  );
}
