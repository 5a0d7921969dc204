import { describe, expect, it } from "vitest";
import { addStep, connect, deleteStep, edgesOf, emptyDefinition, errorsByStep, layout, portsOf, toGraph, type Definition } from "./flowGraph";

const cart: Definition = {
  trigger: { event: "checkout_abandoned" },
  start: "wait_1h",
  steps: {
    wait_1h: { type: "wait", duration: { hours: 1 }, next: "has_orders" },
    has_orders: { type: "split", condition: { field: "contact.order_count", op: "gt", value: 0 }, yes: "mail_vip", no: "mail" },
    mail_vip: { type: "send_email", subject: "VIP", mjml: "<mjml/>", next: "ab" },
    mail: { type: "send_email", subject: "Hi", mjml: "<mjml/>", next: "ab" },
    ab: { type: "random_split", variants: [{ name: "A", weight: 50, next: "bye" }, { name: "B", weight: 50, next: null }] },
    bye: { type: "exit" },
  },
};

describe("definition -> graph", () => {
  it("draws one edge per filled port, labelled by the port", () => {
    const edges = edgesOf(cart);
    expect(edges.map((e) => `${e.source}.${e.sourceHandle}->${e.target}`).sort()).toEqual([
      "ab.variant:0->bye", "has_orders.no->mail", "has_orders.yes->mail_vip", "mail.next->ab", "mail_vip.next->ab", "wait_1h.next->has_orders",
    ]);
    expect(edges.find((e) => e.sourceHandle === "yes")!.label).toBe("Yes");
  });

  it("places each step below everything that leads to it, the arms of a split side by side", () => {
    const p = layout(cart);
    expect(p.wait_1h.y).toBeLessThan(p.has_orders.y);
    expect(p.mail.y).toBe(p.mail_vip.y);
    expect(p.mail.x).not.toBe(p.mail_vip.x);
    expect(p.ab.y).toBeGreaterThan(p.mail.y); // the merge sits below both arms
    expect(p.bye.y).toBeGreaterThan(p.ab.y);
  });

  it("keeps positions the merchant dragged", () => {
    const { nodes } = toGraph(cart, { mail: { x: 999, y: 5 } });
    expect(nodes.find((n) => n.id === "mail")!.position).toEqual({ x: 999, y: 5 });
    expect(nodes.find((n) => n.id === "wait_1h")!.isStart).toBe(true);
    expect(nodes.find((n) => n.id === "wait_1h")!.label).toBe("Delay: 1 hour");
  });

  it("gives branch, wait-for-event and exit steps their own ports", () => {
    expect(portsOf({ type: "branch", branches: [{ next: null }, { next: null }], else: null }).map((p) => p.id)).toEqual(["branch:0", "branch:1", "else"]);
    expect(portsOf({ type: "wait_event", event: "x" }).map((p) => p.id)).toEqual(["next", "timeout_next"]);
    expect(portsOf({ type: "exit" })).toEqual([]);
  });
});

describe("editing -> definition", () => {
  it("the first step added to an empty flow becomes its start", () => {
    const { definition, id } = addStep(emptyDefinition(), "wait");
    expect(definition.start).toBe(id);
    expect(definition.steps[id]).toMatchObject({ type: "wait", duration: { days: 1 }, next: null });
  });

  it("a split then a delay on its yes arm: the stored shape the API expects", () => {
    let d = addStep(emptyDefinition(), "split").definition;
    const split = d.start!;
    const added = addStep(d, "wait", split);
    d = added.definition;
    expect(d.steps[split]).toMatchObject({ yes: added.id, no: null });
    const second = addStep(d, "send_email", split);
    expect(second.definition.steps[split]).toMatchObject({ yes: added.id, no: second.id });
  });

  it("inserting after a linked step keeps what followed behind the new step", () => {
    const { definition, id } = addStep(cart, "add_tag", "mail");
    expect(definition.steps.mail.next).toBe(id);
    expect(definition.steps[id].next).toBe("ab");
  });

  it("deleting a step relinks its parents to its follower, and moves the start", () => {
    const d = deleteStep(cart, "mail");
    expect(d.steps.mail).toBeUndefined();
    expect(d.steps.has_orders.no).toBe("ab");
    expect(deleteStep(cart, "wait_1h").start).toBe("has_orders");
  });

  it("connecting and disconnecting write the port, never a self-loop", () => {
    expect(connect(cart, "ab", "variant:1", "bye").steps.ab.variants).toEqual([
      { name: "A", weight: 50, next: "bye" }, { name: "B", weight: 50, next: "bye" }]);
    expect(connect(cart, "mail", "next", null).steps.mail.next).toBeNull();
    expect(connect(cart, "mail", "next", "mail")).toBe(cart);
  });
});

describe("validation errors -> steps", () => {
  it("puts each API problem on the step its path names, the rest on the flow", () => {
    const grouped = errorsByStep([
      { path: "steps.mail.subject", message: "A subject is required." },
      { path: "definition.steps.ab.variants", message: "Weights must be positive." },
      { path: "trigger.event", message: "Unknown event." },
      { path: null, message: "step 'bye': unreachable" },
      { path: "steps.has_orders", message: "unreachable from the start step" },
      { path: "steps.gone.next", message: "Refers to a removed step." },
    ], cart);
    expect(grouped.mail).toEqual(["subject: A subject is required."]);
    expect(grouped.ab).toEqual(["variants: Weights must be positive."]);
    expect(grouped.bye).toEqual(["step 'bye': unreachable"]);
    expect(grouped.has_orders).toEqual(["unreachable from the start step"]);
    expect(grouped[""]).toEqual(["Unknown event.", "Refers to a removed step."]);
  });
});

describe("200+ steps without lag", () => {
  function bigFlow(n: number): Definition {
    const steps: Definition["steps"] = {};
    for (let i = 0; i < n; i++) {
      const next = i + 1 < n ? `s${i + 1}` : null;
      steps[`s${i}`] = i % 10 === 0
        ? { type: "split", condition: {}, yes: next, no: i + 2 < n ? `s${i + 2}` : null }
        : { type: i % 3 ? "send_email" : "wait", subject: `m${i}`, duration: { hours: 1 }, next };
    }
    return { trigger: { event: "order_created" }, start: "s0", steps };
  }

  // 500 steps take ~5 ms per full conversion here; the bound leaves room for a busy CI machine while
  // still failing an accidentally quadratic layout (which takes seconds at this size).
  it("lays out and converts 500 steps in a few milliseconds per edit", () => {
    const flow = bigFlow(500);
    toGraph(flow); // warm up the JIT
    const started = performance.now();
    for (let i = 0; i < 10; i++) toGraph(flow);
    const perCall = (performance.now() - started) / 10;
    expect(Object.keys(layout(flow))).toHaveLength(500);
    expect(perCall).toBeLessThan(40);
  });
});
