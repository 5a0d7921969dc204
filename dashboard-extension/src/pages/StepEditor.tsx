/** The side panel of the builder: edit the selected step (or the flow's trigger), with live message preview. */
import { Box, Button, Text } from "@saleor/macaw-ui";
import { useEffect, useState, type ReactNode } from "react";
import { fieldErrors, gql } from "../api";
import { smsSegments } from "../format";
import type { Definition, Step } from "../flowGraph";
import { FieldError } from "../ui";

export const VARIABLES = ["contact.first_name", "contact.last_name", "contact.email", "contact.order_count", "contact.total_spent",
  "shop.name", "shop.url", "shop.support_email", "event.total_gross_amount", "event.checkout_url", "flow.name", "unsubscribe_url", "preferences_url"];
/** The loop the prebuilt cross-sell and win-back emails use (docs/flows.md, template variables). */
export const RECOMMENDATIONS_SNIPPET = `{% for item in recommendations(3) %}
  <a href="{{ item.product_url or shop.url }}">{{ item.product_name }}</a> {{ item.price | money(item.currency) }}
{% endfor %}`;
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

function Field({ label, children, error, id }: { label: string; children: ReactNode; error?: string; id: string }) {
  return (
    <Box display="flex" flexDirection="column" gap={1}>
      <label htmlFor={id}><Text size={2}>{label}</Text></label>
      {children}
      <FieldError id={`${id}-error`} message={error} />
    </Box>
  );
}

/** A JSON field edited as text, applied when it parses. */
function JsonField({ id, label, value, onChange }: { id: string; label: string; value: unknown; onChange: (v: unknown) => void }) {
  const [text, setText] = useState(() => (value == null ? "" : JSON.stringify(value, null, 2)));
  const [error, setError] = useState("");
  return (
    <Field id={id} label={label} error={error}>
      <textarea id={id} className="flows-textarea" rows={5} value={text} aria-invalid={Boolean(error)} onChange={(e) => {
        setText(e.target.value);
        if (!e.target.value.trim()) { onChange(undefined); setError(""); return; }
        try { onChange(JSON.parse(e.target.value)); setError(""); } catch { setError("Not valid JSON yet."); }
      }} />
    </Field>
  );
}

function DurationField({ id, label, value, onChange }: { id: string; label: string; value: Record<string, number> | undefined; onChange: (v: Record<string, number>) => void }) {
  const d = value ?? {};
  return (
    <fieldset style={{ border: 0, padding: 0, margin: 0 }}>
      <legend><Text size={2}>{label}</Text></legend>
      <Box display="flex" gap={2} flexWrap="wrap">
        {(["days", "hours", "minutes"] as const).map((unit) => (
          <label key={unit} style={{ display: "flex", gap: 4, alignItems: "center" }}>
            <input id={`${id}-${unit}`} className="flows-input" style={{ width: 70 }} type="number" min={0} value={d[unit] ?? 0}
              onChange={(e) => { const next = { ...d, [unit]: Number(e.target.value) }; if (!next[unit]) delete next[unit]; onChange(next); }} />
            <Text size={2}>{unit}</Text>
          </label>
        ))}
      </Box>
    </fieldset>
  );
}

export function StepEditor({ flowId, stepId, step, errors, onChange, ensureSaved }: { flowId: string; stepId: string; step: Step; errors: string[];
  onChange: (s: Step) => void; ensureSaved: () => Promise<boolean> }) {
  const set = (patch: Record<string, unknown>) => onChange({ ...step, ...patch });
  const text = (key: string, label: string, multiline = false) => (
    <Field id={`f-${key}`} label={label}>
      {multiline ? <textarea id={`f-${key}`} className="flows-textarea" rows={key === "mjml" ? 12 : 4} value={String(step[key] ?? "")} onChange={(e) => set({ [key]: e.target.value })} />
        : <input id={`f-${key}`} className="flows-input" value={String(step[key] ?? "")} onChange={(e) => set({ [key]: e.target.value })} />}
    </Field>
  );
  return (
    <Box display="flex" flexDirection="column" gap={3}>
      {errors.length > 0 && <Box role="alert" data-testid="step-errors">{errors.map((m, i) => <Text key={i} as="p" color="critical1">{m}</Text>)}</Box>}
      {step.type === "send_email" && <>{text("subject", "Subject")}{text("preheader", "Preheader")}{text("mjml", "MJML", true)}<Variables /><MessagePreview flowId={flowId} stepId={stepId} step={step} ensureSaved={ensureSaved} /></>}
      {step.type === "send_sms" && <>{text("body", "Message", true)}<SmsCount body={String(step.body ?? "")} /><Variables /><MessagePreview flowId={flowId} stepId={stepId} step={step} ensureSaved={ensureSaved} /></>}
      {step.type === "wait" && <DurationField id="f-duration" label="Wait for" value={step.duration as Record<string, number>} onChange={(duration) => set({ duration })} />}
      {step.type === "wait_until" && <>
        <Field id="f-time" label="Time of day (contact's time zone)"><input id="f-time" className="flows-input" type="time" value={String(step.time ?? "")} onChange={(e) => set({ time: e.target.value || undefined })} /></Field>
        <fieldset style={{ border: 0, padding: 0 }}><legend><Text size={2}>Weekdays</Text></legend>
          {WEEKDAYS.map((d) => {
            const days = (step.weekdays as string[]) ?? [];
            return <label key={d} style={{ marginRight: 8 }}><input type="checkbox" checked={days.includes(d)} onChange={(e) => set({ weekdays: e.target.checked ? [...days, d] : days.filter((x) => x !== d) })} /> {d}</label>;
          })}
        </fieldset></>}
      {step.type === "wait_date" && <>
        <Field id="f-date" label="Date"><input id="f-date" className="flows-input" type="date" value={String(step.date ?? "")} onChange={(e) => set({ date: e.target.value || undefined })} /></Field>
        {text("field", "…or a date field (contact.… / event.…)")}
        <DurationField id="f-offset" label="Offset" value={step.offset as Record<string, number>} onChange={(offset) => set({ offset })} /></>}
      {step.type === "wait_event" && <>{text("event", "Event")}
        <DurationField id="f-timeout" label="Timeout after" value={step.timeout as Record<string, number>} onChange={(timeout) => set({ timeout })} />
        <JsonField id="f-filter" label="Filter on the awaited event (condition)" value={step.filter} onChange={(filter) => set({ filter: filter ?? undefined })} /></>}
      {step.type === "split" && <JsonField id="f-condition" label="Condition (profile, order history, engagement)" value={step.condition} onChange={(condition) => set({ condition })} />}
      {step.type === "branch" && <>
        {((step.branches as { condition: unknown; next: string | null }[]) ?? []).map((b, i, all) => (
          <JsonField key={`${i}-${all.length}`} id={`f-branch-${i}`} label={`Branch ${i + 1} condition`} value={b.condition}
            onChange={(condition) => set({ branches: all.map((x, j) => (j === i ? { ...x, condition } : x)) })} />
        ))}
        <Box display="flex" gap={2}>
          <Button size="small" variant="secondary" onClick={() => set({ branches: [...((step.branches as object[]) ?? []), { condition: { field: "contact.order_count", op: "gt", value: 0 }, next: null }] })}>Add branch</Button>
          <Button size="small" variant="tertiary" disabled={((step.branches as object[]) ?? []).length <= 1} onClick={() => set({ branches: (step.branches as object[]).slice(0, -1) })}>Remove last</Button>
        </Box></>}
      {step.type === "random_split" && <>
        {((step.variants as { name: string; weight: number; next: string | null }[]) ?? []).map((v, i, all) => (
          <Box key={i} display="flex" gap={2} alignItems="center">
            <input aria-label={`Variant ${i + 1} name`} className="flows-input" style={{ width: 100 }} value={v.name} onChange={(e) => set({ variants: all.map((x, j) => (j === i ? { ...x, name: e.target.value } : x)) })} />
            <input aria-label={`Variant ${i + 1} weight`} className="flows-input" style={{ width: 70 }} type="number" min={0} value={v.weight} onChange={(e) => set({ variants: all.map((x, j) => (j === i ? { ...x, weight: Number(e.target.value) } : x)) })} />
          </Box>
        ))}
        <Button size="small" variant="secondary" onClick={() => set({ variants: [...((step.variants as object[]) ?? []), { name: String.fromCharCode(65 + ((step.variants as object[]) ?? []).length), weight: 50, next: null }] })}>Add variant</Button>
        <label><input type="checkbox" checked={Boolean(step.auto_winner)} onChange={(e) => set({ auto_winner: e.target.checked || undefined })} /> <Text size={2}>Send everyone the winner once it is clear</Text></label></>}
      {(step.type === "add_tag" || step.type === "remove_tag") && text("tag", "Tag")}
      {(step.type === "add_to_list" || step.type === "remove_from_list") && text("list", "List")}
      {step.type === "set_field" && <>{text("field", "Field")}{text("value", "Value")}</>}
      {step.type === "webhook" && <>{text("url", "URL (https)")}{text("secret", "Signing secret")}<JsonField id="f-body" label="Body (JSON, values may use {{ }})" value={step.body} onChange={(body) => set({ body })} /></>}
      {step.type === "notify_staff" && <>
        <Field id="f-to" label="To (comma-separated addresses)"><input id="f-to" className="flows-input" value={((step.to as string[]) ?? []).join(", ")} onChange={(e) => set({ to: e.target.value.split(",").map((s) => s.trim()).filter(Boolean) })} /></Field>
        {text("subject", "Subject")}{text("body", "Body", true)}</>}
      {step.type === "exit" && <Text color="default2">The journey ends here (reason: exit step).</Text>}
    </Box>
  );
}

function Variables() {
  return (
    <details>
      <summary><Text size={2}>Variables you can use</Text></summary>
      <Text size={2} color="default2">Write <code>{"{{ contact.first_name | default(\"there\", true) }}"}</code> for a fallback when a value is empty.</Text>
      <Box as="ul" margin={0} paddingLeft={4}>{VARIABLES.map((v) => <li key={v}><code>{`{{ ${v} }}`}</code></li>)}</Box>
      <Text size={2} color="default2">Products chosen for this contact from the shop's own orders (bought together, similar, best sellers; never out of stock):</Text>
      <pre className="flows-snippet" data-testid="recommendations-snippet">{RECOMMENDATIONS_SNIPPET}</pre>
    </details>
  );
}

function SmsCount({ body }: { body: string }) {
  const count = smsSegments(body);
  return <Text size={2} color={count.segments > 2 ? "warning1" : "default2"} data-testid="sms-segments">{count.characters} characters · {count.segments} segment(s) · {count.encoding}</Text>;
}

type Preview = { subject: string; html: string; text: string; sms: { segments: number; encoding: string } | null };

/** Saves the draft, then renders this step with sample data (debounced while typing); desktop and mobile widths; test send. */
function MessagePreview({ flowId, stepId, step, ensureSaved }: { flowId: string; stepId: string; step: Step; ensureSaved: () => Promise<boolean> }) {
  const [preview, setPreview] = useState<Preview | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [width, setWidth] = useState(600);
  const [to, setTo] = useState("");
  const [sent, setSent] = useState("");
  const key = JSON.stringify(step);
  useEffect(() => {
    const timer = setTimeout(async () => {
      if (!(await ensureSaved())) return;
      try {
        const data = await gql(`query($flow: ID!, $step: String!) { messagePreview(flowId: $flow, stepId: $step) { errors { field message } preview { subject html text sms { segments encoding } } } }`, { flow: flowId, step: stepId });
        setErrors(fieldErrors(data.messagePreview.errors));
        setPreview(data.messagePreview.preview);
      } catch (e) {
        setErrors({ "": (e as Error).message });
      }
    }, 800);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, flowId, stepId]);

  async function testSend() {
    setSent("");
    const data = await gql(`mutation($input: FlowTestSendInput!) { flowTestSend(input: $input) { errors { field message } message { id } } }`, { input: { flowId, stepId, to } });
    const r = data.flowTestSend;
    setErrors(fieldErrors(r.errors));
    if (!r.errors.length) setSent(`Test sent to ${to}.`);
  }

  return (
    <Box display="flex" flexDirection="column" gap={2} data-testid="message-preview">
      <Box display="flex" gap={2} alignItems="center">
        <Text size={2} fontWeight="bold">Preview</Text>
        {step.type === "send_email" && <>
          <Button size="small" variant={width === 600 ? "primary" : "secondary"} onClick={() => setWidth(600)}>Desktop</Button>
          <Button size="small" variant={width === 375 ? "primary" : "secondary"} onClick={() => setWidth(375)}>Mobile</Button>
        </>}
      </Box>
      {Object.entries(errors).filter(([f]) => f !== "to").map(([f, m]) => <Text key={f} size={2} color="critical1" role="alert">{f ? `${f}: ` : ""}{m}</Text>)}
      {preview && step.type === "send_email" && <>
        <Text size={2}>Subject: {preview.subject}</Text>
        <Box overflowX="auto"><iframe title="Email preview" className="preview-frame" sandbox="" srcDoc={preview.html} style={{ width }} /></Box>
      </>}
      {preview && step.type === "send_sms" && <Text>{preview.text} ({preview.sms?.segments} segment(s), {preview.sms?.encoding})</Text>}
      <Box display="flex" gap={2} alignItems="flex-end" flexWrap="wrap">
        <Field id="test-to" label="Send a test to" error={errors.to}>
          <input id="test-to" className="flows-input" value={to} onChange={(e) => setTo(e.target.value)} placeholder={step.type === "send_sms" ? "+15551234567" : "you@shop.com"} />
        </Field>
        <Button size="small" variant="secondary" disabled={!to} onClick={testSend}>Send test</Button>
      </Box>
      {sent && <Text size={2} color="success1" role="status">{sent}</Text>}
    </Box>
  );
}

export function TriggerEditor({ definition, onChange, errors }: { definition: Definition; onChange: (d: Definition) => void; errors: Record<string, string> }) {
  return (
    <Box display="flex" flexDirection="column" gap={3} marginTop={3}>
      <Field id="f-trigger" label="Trigger event" error={errors["trigger.event"] || errors["definition.trigger.event"]}>
        <input id="f-trigger" className="flows-input" list="trigger-events" value={definition.trigger?.event ?? ""} onChange={(e) => onChange({ ...definition, trigger: { ...definition.trigger, event: e.target.value } })} />
        <datalist id="trigger-events">{["checkout_abandoned", "order_created", "order_fulfilled", "customer_created", "product_viewed", "back_in_stock", "birthday"].map((e) => <option key={e} value={e} />)}</datalist>
      </Field>
      <JsonField id="f-trigger-filter" label="Trigger filter (condition, optional)" value={definition.trigger?.filter ?? null}
        onChange={(filter) => onChange({ ...definition, trigger: { ...definition.trigger, filter: filter ?? undefined } })} />
      <Field id="f-kind" label="Kind">
        <select id="f-kind" className="flows-select" value={String(definition.kind ?? "marketing")} onChange={(e) => onChange({ ...definition, kind: e.target.value })}>
          <option value="marketing">Marketing (needs consent)</option><option value="transactional">Transactional</option>
        </select>
      </Field>
      <Field id="f-holdout" label="Holdout (% of entrants kept out, to measure lift)">
        <input id="f-holdout" className="flows-input" type="number" min={0} max={50} value={Number(definition.holdout_percent ?? 0)} onChange={(e) => onChange({ ...definition, holdout_percent: Number(e.target.value) || undefined })} />
      </Field>
    </Box>
  );
}
