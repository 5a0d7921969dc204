/**
 * A flow definition (the JSON the API stores, docs/flows.md) <-> the builder's canvas graph.
 * Pure functions, no React: the unit tests and the 200-step perf check run them directly.
 */

export type Step = { type: string; [key: string]: unknown };
export type Definition = {
  trigger: { event: string; filter?: unknown };
  start: string | null;
  steps: Record<string, Step>;
  [key: string]: unknown;
};

/** An outgoing connection point of a step: which key of the step holds the target. */
export type Port = { id: string; label: string };
export type GraphNode = { id: string; type: string; label: string; isStart: boolean; position: { x: number; y: number } };
export type GraphEdge = { id: string; source: string; sourceHandle: string; target: string; label: string };

export const STEP_TYPES: Record<string, string> = {
  send_email: "Email",
  send_sms: "SMS",
  wait: "Delay",
  wait_until: "Wait until time / weekday",
  wait_date: "Wait until date",
  wait_event: "Wait for event",
  split: "Yes / no split",
  branch: "Multi-branch split",
  random_split: "Random A/B split",
  add_tag: "Add tag",
  remove_tag: "Remove tag",
  add_to_list: "Add to list",
  remove_from_list: "Remove from list",
  set_field: "Set field",
  webhook: "Webhook",
  notify_staff: "Notify staff",
  exit: "Exit",
};

/** Ports of a step, in display order. */
export function portsOf(step: Step): Port[] {
  switch (step.type) {
    case "exit":
      return [];
    case "split":
      return [{ id: "yes", label: "Yes" }, { id: "no", label: "No" }];
    case "branch": {
      const branches = (step.branches as { next?: string | null }[] | undefined) ?? [];
      return [...branches.map((_, i) => ({ id: `branch:${i}`, label: `Branch ${i + 1}` })), { id: "else", label: "Else" }];
    }
    case "random_split": {
      const variants = (step.variants as { name?: string }[] | undefined) ?? [];
      return variants.map((v, i) => ({ id: `variant:${i}`, label: v.name || `Variant ${i + 1}` }));
    }
    case "wait_event":
      return [{ id: "next", label: "Event" }, { id: "timeout_next", label: "Timeout" }];
    default:
      return [{ id: "next", label: "" }];
  }
}

export function targetOf(step: Step, port: string): string | null {
  const [key, index] = port.split(":");
  if (key === "branch") return ((step.branches as { next?: string | null }[])[Number(index)]?.next as string) ?? null;
  if (key === "variant") return ((step.variants as { next?: string | null }[])[Number(index)]?.next as string) ?? null;
  return (step[key] as string | null | undefined) ?? null;
}

/** A copy of the step with `port` pointing at `target` (null: ends there). */
export function withTarget(step: Step, port: string, target: string | null): Step {
  const [key, index] = port.split(":");
  if (key === "branch" || key === "variant") {
    const listKey = key === "branch" ? "branches" : "variants";
    const list = [...((step[listKey] as Record<string, unknown>[]) ?? [])];
    list[Number(index)] = { ...list[Number(index)], next: target };
    return { ...step, [listKey]: list };
  }
  return { ...step, [key]: target };
}

export function stepLabel(id: string, step: Step): string {
  const kind = STEP_TYPES[step.type] ?? step.type;
  switch (step.type) {
    case "send_email":
      return `${kind}: ${String(step.subject ?? id)}`;
    case "wait":
      return `${kind}: ${formatDuration(step.duration as Record<string, number>)}`;
    case "wait_event":
      return `${kind}: ${String(step.event ?? "?")}`;
    case "add_tag":
    case "remove_tag":
      return `${kind}: ${String(step.tag ?? "")}`;
    default:
      return kind;
  }
}

export function formatDuration(duration: Record<string, number> | undefined): string {
  if (!duration) return "?";
  const parts = (["days", "hours", "minutes", "seconds"] as const)
    .filter((unit) => duration[unit])
    .map((unit) => `${duration[unit]} ${duration[unit] === 1 ? unit.slice(0, -1) : unit}`);
  return parts.join(" ") || "0 minutes";
}

export function edgesOf(definition: Definition): GraphEdge[] {
  const edges: GraphEdge[] = [];
  for (const [id, step] of Object.entries(definition.steps)) {
    for (const port of portsOf(step)) {
      const target = targetOf(step, port.id);
      if (target && definition.steps[target]) {
        edges.push({ id: `${id}:${port.id}`, source: id, sourceHandle: port.id, target, label: port.label });
      }
    }
  }
  return edges;
}

export const COLUMN_WIDTH = 280;
export const ROW_HEIGHT = 120;

/**
 * Layered layout: a step's row is its longest distance from the start (so branches flow down and
 * merge below both arms); steps of one row are spread side by side. O(steps + edges).
 */
export function layout(definition: Definition): Record<string, { x: number; y: number }> {
  const ids = Object.keys(definition.steps);
  const edges = edgesOf(definition);
  const incoming = new Map<string, number>(ids.map((id) => [id, 0]));
  const outgoing = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const edge of edges) {
    incoming.set(edge.target, (incoming.get(edge.target) ?? 0) + 1);
    outgoing.get(edge.source)!.push(edge.target);
  }
  // Kahn's algorithm; cycles (invalid drafts) fall back to the order the steps are in.
  const depth = new Map<string, number>();
  const queue = ids.filter((id) => incoming.get(id) === 0);
  const start = definition.start && definition.steps[definition.start] ? definition.start : null;
  if (start) queue.sort((a, b) => (a === start ? -1 : b === start ? 1 : 0));
  queue.forEach((id) => depth.set(id, 0));
  for (let head = 0; head < queue.length; head++) {
    const id = queue[head];
    for (const target of outgoing.get(id)!) {
      depth.set(target, Math.max(depth.get(target) ?? 0, depth.get(id)! + 1));
      incoming.set(target, incoming.get(target)! - 1);
      if (incoming.get(target) === 0) queue.push(target);
    }
  }
  const rows = new Map<number, string[]>();
  for (const id of ids) {
    const row = depth.get(id) ?? 0;
    if (!rows.has(row)) rows.set(row, []);
    rows.get(row)!.push(id);
  }
  const positions: Record<string, { x: number; y: number }> = {};
  for (const [row, members] of rows) {
    members.forEach((id, i) => {
      positions[id] = { x: (i - (members.length - 1) / 2) * COLUMN_WIDTH, y: (row + 1) * ROW_HEIGHT };
    });
  }
  return positions;
}

export function toGraph(definition: Definition, positions?: Record<string, { x: number; y: number }>) {
  const placed = { ...layout(definition), ...(positions ?? {}) };
  const nodes: GraphNode[] = Object.entries(definition.steps).map(([id, step]) => ({
    id,
    type: step.type,
    label: stepLabel(id, step),
    isStart: id === definition.start,
    position: placed[id],
  }));
  return { nodes, edges: edgesOf(definition) };
}

/** A fresh, unused step id such as `send_email_3`. */
export function newStepId(definition: Definition, type: string): string {
  for (let n = 1; ; n++) {
    const id = `${type}_${n}`;
    if (!definition.steps[id]) return id;
  }
}

export function defaultStep(type: string): Step {
  switch (type) {
    case "send_email":
      return { type, subject: "New email", preheader: "", mjml: "<mjml><mj-body><mj-section><mj-column><mj-text>Hello {{ contact.first_name | default(\"there\", true) }}</mj-text><mj-text><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></mj-text></mj-column></mj-section></mj-body></mjml>", next: null };
    case "send_sms":
      return { type, body: "Hi {{ contact.first_name | default(\"there\", true) }}", next: null };
    case "wait":
      return { type, duration: { days: 1 }, next: null };
    case "wait_until":
      return { type, time: "09:00", weekdays: ["mon", "tue", "wed", "thu", "fri"], next: null };
    case "wait_date":
      return { type, date: new Date(Date.now() + 7 * 864e5).toISOString().slice(0, 10), next: null };
    case "wait_event":
      return { type, event: "order_created", timeout: { days: 3 }, next: null, timeout_next: null };
    case "split":
      return { type, condition: { field: "contact.order_count", op: "gt", value: 0 }, yes: null, no: null };
    case "branch":
      return { type, branches: [{ condition: { field: "contact.order_count", op: "gt", value: 1 }, next: null }], else: null };
    case "random_split":
      return { type, variants: [{ name: "A", weight: 50, next: null }, { name: "B", weight: 50, next: null }] };
    case "add_tag":
    case "remove_tag":
      return { type, tag: "vip", next: null };
    case "add_to_list":
    case "remove_from_list":
      return { type, list: "newsletter", next: null };
    case "set_field":
      return { type, field: "segment", value: "", next: null };
    case "webhook":
      return { type, url: "https://", body: {}, next: null };
    case "notify_staff":
      return { type, to: [], subject: "Flow notification", body: "{{ contact.email }}", next: null };
    default:
      return { type };
  }
}

/**
 * Adds a step of `type` after `after` (on its first free port, or its first port, re-linking what
 * followed there behind the new step). Without `after` the step starts the flow if it has no start.
 */
export function addStep(definition: Definition, type: string, after?: string | null, port?: string): { definition: Definition; id: string } {
  const id = newStepId(definition, type);
  let step = defaultStep(type);
  const steps = { ...definition.steps, [id]: step };
  let start = definition.start;
  if (after && steps[after]) {
    const parent = steps[after];
    const ports = portsOf(parent);
    const chosen = port ?? ports.find((p) => !targetOf(parent, p.id))?.id ?? ports[0]?.id;
    if (chosen) {
      const previous = targetOf(parent, chosen);
      const ownPorts = portsOf(step);
      if (previous && ownPorts.length) step = withTarget(step, ownPorts[0].id, previous);
      steps[id] = step;
      steps[after] = withTarget(parent, chosen, id);
    }
  } else if (!start || !steps[start]) {
    start = id;
  }
  return { definition: { ...definition, start, steps }, id };
}

/** Removes a step; whatever pointed at it now points where its first port went (or ends). */
export function deleteStep(definition: Definition, id: string): Definition {
  const removed = definition.steps[id];
  if (!removed) return definition;
  const firstPort = portsOf(removed)[0];
  const follower = firstPort ? targetOf(removed, firstPort.id) : null;
  const steps: Record<string, Step> = {};
  for (const [otherId, step] of Object.entries(definition.steps)) {
    if (otherId === id) continue;
    let updated = step;
    for (const port of portsOf(step)) {
      if (targetOf(updated, port.id) === id) updated = withTarget(updated, port.id, follower);
    }
    steps[otherId] = updated;
  }
  const start = definition.start === id ? follower : definition.start;
  return { ...definition, start, steps };
}

export function connect(definition: Definition, source: string, port: string, target: string | null): Definition {
  const step = definition.steps[source];
  if (!step || source === target) return definition;
  return { ...definition, steps: { ...definition.steps, [source]: withTarget(step, port, target) } };
}

/**
 * Maps the API's validation paths to the step they concern: `steps.email_1.subject` → email_1.
 * Problems not about one step (trigger, start, …) go under "" (shown above the canvas).
 */
export function errorsByStep(errors: { path?: string | null; message: string }[], definition: Definition): Record<string, string[]> {
  const grouped: Record<string, string[]> = {};
  for (const error of errors) {
    const path = error.path ?? "";
    let stepId = "";
    let message = error.message;
    const match = /^(?:definition\.)?steps\.([^.[\]]+)\.?(.*)$/.exec(path);
    if (match && definition.steps[match[1]]) {
      stepId = match[1];
      if (match[2]) message = `${match[2]}: ${error.message}`; // "subject: required"
    }
    else {
      // Messages that name a step ("step 'email_1': …") without a path.
      const named = /step ['"]?([A-Za-z0-9_-]+)['"]?/.exec(error.message);
      if (named && definition.steps[named[1]]) stepId = named[1];
    }
    (grouped[stepId] ??= []).push(stepId ? message : error.message);
  }
  return grouped;
}

export function emptyDefinition(event = "order_created"): Definition {
  return { trigger: { event }, kind: "marketing", start: null, steps: {} };
}
