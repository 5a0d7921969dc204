import { Box, Button, Input, Text } from "@saleor/macaw-ui";
import { useEffect, useState } from "react";
import { fieldErrors, gql } from "../api";
import { formatDate } from "../format";
import { Card, ErrorState, FieldError, Loading, PageHeader, useQuery } from "../ui";

const VALUES = `frequencyCapHours { email sms } quietHours { email sms } senders { channel fromEmail replyTo smsFrom } topics { key label }`;
const QUERY = `{ flowSettings { updatedAt stored { ${VALUES} } effective { ${VALUES} } } }`;

type Sender = { channel: string; fromEmail: string | null; replyTo: string | null; smsFrom: string | null };
type Values = { frequencyCapHours: { email: number | null; sms: number | null } | null; quietHours: { email: string | null; sms: string | null } | null;
  senders: Sender[] | null; topics: { key: string; label: Record<string, string> }[] | null };

/** The form's state -> FlowSettingsInput (empty text fields are "not set"). */
export function settingsInput(form: { capEmail: string; capSms: string; quietEmail: string; quietSms: string; senders: Sender[]; topics: { key: string; label: string }[] }) {
  const intOrNull = (s: string) => (s.trim() === "" ? null : Number(s));
  const textOrNull = (s: string | null) => (s && s.trim() ? s.trim() : null);
  return {
    frequencyCapHours: { email: intOrNull(form.capEmail), sms: intOrNull(form.capSms) },
    quietHours: { email: textOrNull(form.quietEmail), sms: textOrNull(form.quietSms) },
    senders: form.senders.map((s) => ({ channel: s.channel.trim(), fromEmail: textOrNull(s.fromEmail), replyTo: textOrNull(s.replyTo), smsFrom: textOrNull(s.smsFrom) })),
    topics: form.topics.filter((t) => t.key.trim()).map((t) => ({ key: t.key.trim(), label: { en: t.label || t.key } })),
  };
}

export function Settings() {
  const settings = useQuery<{ flowSettings: { updatedAt: string | null; stored: Values; effective: Values } }>(QUERY);
  const [form, setForm] = useState<Parameters<typeof settingsInput>[0] | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState("");
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    const s = settings.data?.flowSettings.stored;
    if (!s) return;
    setForm({
      capEmail: s.frequencyCapHours?.email?.toString() ?? "", capSms: s.frequencyCapHours?.sms?.toString() ?? "",
      quietEmail: s.quietHours?.email ?? "", quietSms: s.quietHours?.sms ?? "",
      senders: s.senders ?? [], topics: (s.topics ?? []).map((t) => ({ key: t.key, label: t.label?.en ?? Object.values(t.label ?? {})[0] ?? "" })),
    });
  }, [settings.data]);

  async function save() {
    if (!form) return;
    setSaving(true);
    setSaved("");
    try {
      const data = await gql(`mutation($input: FlowSettingsInput!) { flowSettingsUpdate(input: $input) { errors { field code message } settings { updatedAt } } }`, { input: settingsInput(form) });
      const r = data.flowSettingsUpdate;
      setErrors(fieldErrors(r.errors));
      if (!r.errors.length) setSaved(`Saved ${formatDate(r.settings.updatedAt)}`);
    } catch (error) {
      setErrors({ "": (error as Error).message });
    } finally {
      setSaving(false);
    }
  }

  const effective = settings.data?.flowSettings.effective;
  const field = (name: string, label: string, value: string, onChange: (v: string) => void, placeholder?: string, type: "text" | "number" = "text") => (
    <Box display="flex" flexDirection="column" gap={1} style={{ minWidth: 200 }}>
      <Input label={label} value={value} type={type} placeholder={placeholder} onChange={(e) => onChange(e.target.value)} error={Boolean(errors[name])}
        aria-invalid={Boolean(errors[name])} aria-describedby={`err-${name}`} data-field={name} />
      <FieldError id={`err-${name}`} message={errors[name]} />
    </Box>
  );
  if (settings.loading) return <Loading />;
  if (settings.error) return <ErrorState message={settings.error} onRetry={settings.reload} />;
  if (!form) return <Loading />;
  const set = (patch: Partial<typeof form>) => setForm({ ...form, ...patch });
  return (
    <Box display="flex" flexDirection="column" gap={4}>
      <PageHeader title="Settings" subtitle="Flow-wide rules. Values left empty fall back to the plugin's configuration (shown as placeholders)."
        actions={<Button onClick={save} disabled={saving}>Save</Button>} />
      {errors[""] && <ErrorState message={errors[""]} />}
      {saved && <Text color="success1" role="status">{saved}</Text>}
      <Card title="Frequency cap (hours between marketing messages)">
        <Box display="flex" gap={3} flexWrap="wrap">
          {field("frequencyCapHours.email", "Email", form.capEmail, (v) => set({ capEmail: v }), effective?.frequencyCapHours?.email?.toString(), "number")}
          {field("frequencyCapHours.sms", "SMS", form.capSms, (v) => set({ capSms: v }), effective?.frequencyCapHours?.sms?.toString(), "number")}
        </Box>
      </Card>
      <Card title="Quiet hours (contact's time zone, HH:MM-HH:MM)">
        <Box display="flex" gap={3} flexWrap="wrap">
          {field("quietHours.email", "Email", form.quietEmail, (v) => set({ quietEmail: v }), effective?.quietHours?.email ?? "21:00-08:00")}
          {field("quietHours.sms", "SMS", form.quietSms, (v) => set({ quietSms: v }), effective?.quietHours?.sms ?? "21:00-08:00")}
        </Box>
      </Card>
      <Card title="Senders per channel" actions={<Button size="small" variant="secondary" onClick={() => set({ senders: [...form.senders, { channel: "", fromEmail: "", replyTo: "", smsFrom: "" }] })}>Add channel</Button>}>
        {form.senders.length === 0 && <Text color="default2">No per-channel senders: every channel uses the plugin's sender.</Text>}
        {form.senders.map((s, i) => {
          const update = (patch: Partial<Sender>) => set({ senders: form.senders.map((x, j) => (j === i ? { ...x, ...patch } : x)) });
          return (
            <Box key={i} display="flex" gap={3} flexWrap="wrap" alignItems="flex-start">
              {field(`senders.${i}.channel`, "Channel slug", s.channel, (v) => update({ channel: v }))}
              {field(`senders.${i}.fromEmail`, "From email", s.fromEmail ?? "", (v) => update({ fromEmail: v }))}
              {field(`senders.${i}.replyTo`, "Reply-to", s.replyTo ?? "", (v) => update({ replyTo: v }))}
              {field(`senders.${i}.smsFrom`, "SMS sender", s.smsFrom ?? "", (v) => update({ smsFrom: v }))}
              <Button size="small" variant="tertiary" onClick={() => set({ senders: form.senders.filter((_, j) => j !== i) })} aria-label={`Remove sender ${i + 1}`}>Remove</Button>
              <FieldError id={`err-senders.${i}`} message={errors[`senders.${i}`]} />
            </Box>
          );
        })}
      </Card>
      <Card title="Topics (preference centre)" actions={<Button size="small" variant="secondary" onClick={() => set({ topics: [...form.topics, { key: "", label: "" }] })}>Add topic</Button>}>
        {form.topics.map((t, i) => (
          <Box key={i} display="flex" gap={3} flexWrap="wrap">
            {field(`topics.${i}.key`, "Key", t.key, (v) => set({ topics: form.topics.map((x, j) => (j === i ? { ...x, key: v } : x)) }))}
            {field(`topics.${i}.label`, "Label (English)", t.label, (v) => set({ topics: form.topics.map((x, j) => (j === i ? { ...x, label: v } : x)) }))}
          </Box>
        ))}
        <FieldError id="err-topics" message={errors.topics} />
      </Card>
    </Box>
  );
}
