/**
 * The visual path builder: the draft's steps on an @xyflow/react canvas. Every edit makes a new
 * definition (flowGraph.ts), kept in an undo stack; "Save draft" stores it (flowUpdate), "Publish"
 * validates and publishes (flowPublish) then moves people already in the flow as chosen.
 */
import { Background, Controls, Handle, MiniMap, Position, ReactFlow, ReactFlowProvider, useReactFlow, type Connection, type Edge, type Node, type NodeProps, type NodeChange, applyNodeChanges } from "@xyflow/react";
import { Box, Button, Text } from "@saleor/macaw-ui";
import { memo, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { fieldErrors, gql, type FlowError } from "../api";
import { addStep, connect, deleteStep, errorsByStep, portsOf, STEP_TYPES, toGraph, type Definition, type Step } from "../flowGraph";
import { formatNumber, humanize } from "../format";
import { href } from "../router";
import { useSession } from "../session";
import { Badge, Card, ErrorState, FieldError, Loading, PageHeader, STATUS_TONE } from "../ui";
import { StepEditor, TriggerEditor } from "./StepEditor";
import { SimulationPanel } from "./Simulation";

const FLOW = `query($id: ID!) { flow(id: $id) { id name slug status definition hasUnpublishedChanges
  liveVersion { number activeEnrolments } validationErrors { path message } } }`;

type FlowData = { id: string; name: string; slug: string; status: string; definition: Definition; hasUnpublishedChanges: boolean;
  liveVersion: { number: number; activeEnrolments: number } | null; validationErrors: { path: string | null; message: string }[] };

type StepNodeData = { label: string; type: string; ports: { id: string; label: string }[]; errors: string[]; isStart: boolean };

const StepNode = memo(function StepNode({ data, selected }: NodeProps<Node<StepNodeData>>) {
  return (
    <div className={`flow-node${selected ? " selected" : ""}${data.errors.length ? " invalid" : ""}`} data-testid="flow-node" title={data.errors.join("\n")}>
      <Handle type="target" position={Position.Top} />
      <div style={{ fontSize: 10, textTransform: "uppercase", opacity: 0.7 }}>{data.isStart ? "Start · " : ""}{STEP_TYPES[data.type] ?? data.type}</div>
      <div style={{ fontWeight: 600, overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>{data.label}</div>
      {data.errors.length > 0 && <div style={{ color: "#d11", marginTop: 4 }} role="alert">⚠ {data.errors[0]}{data.errors.length > 1 ? ` (+${data.errors.length - 1})` : ""}</div>}
      {data.ports.length > 1 && <div className="ports">{data.ports.map((p) => <span key={p.id}>{p.label}</span>)}</div>}
      {data.ports.map((p, i) => (
        <Handle key={p.id} id={p.id} type="source" position={Position.Bottom} style={{ left: `${((i + 1) / (data.ports.length + 1)) * 100}%` }} />
      ))}
    </div>
  );
});
const NODE_TYPES = { step: StepNode };

/** Re-fits the view when steps are added or removed (not when they are dragged), never zooming past 100 %. */
function AutoFit({ count }: { count: number }) {
  const { fitView } = useReactFlow();
  useEffect(() => {
    const frame = requestAnimationFrame(() => fitView({ maxZoom: 1, padding: 0.2 }));
    return () => cancelAnimationFrame(frame);
  }, [count, fitView]);
  return null;
}

export function Builder({ flowId }: { flowId: string }) {
  const [flow, setFlow] = useState<FlowData | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [history, setHistory] = useState<Definition[]>([]);
  const [definition, setDefinition] = useState<Definition | null>(null);
  const [name, setName] = useState("");
  const [selected, setSelected] = useState<string | null>(null);
  const [positions, setPositions] = useState<Record<string, { x: number; y: number }>>({});
  const [problems, setProblems] = useState<{ path: string | null; message: string }[]>([]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [notice, setNotice] = useState("");
  const [busy, setBusy] = useState(false);
  const [addType, setAddType] = useState("send_email");
  const [publishing, setPublishing] = useState(false);
  const [strategy, setStrategy] = useState("FINISH_ON_OLD");
  const [simulating, setSimulating] = useState(false);
  const saved = useRef<string>("");

  const load = useCallback(async () => {
    try {
      const data = await gql<{ flow: FlowData | null }>(FLOW, { id: flowId });
      if (!data.flow) return setLoadError("This flow does not exist.");
      setFlow(data.flow);
      setName(data.flow.name);
      const stored = (data.flow.definition ?? {}) as Partial<Definition>;
      const def = { ...stored, start: stored.start ?? null, steps: stored.steps ?? {}, trigger: stored.trigger ?? { event: "" } } as Definition;
      setDefinition(def);
      saved.current = JSON.stringify(def);
      setProblems(data.flow.validationErrors);
    } catch (error) {
      setLoadError((error as Error).message);
    }
  }, [flowId]);
  useEffect(() => { load(); }, [load]);

  const change = useCallback((next: Definition) => {
    setProblems([]); // the API's problems were about the previous draft; saving re-checks
    setDefinition((current) => {
      if (current) setHistory((h) => [...h.slice(-99), current]);
      return next;
    });
  }, []);
  const undo = useCallback(() => {
    setHistory((h) => {
      if (!h.length) return h;
      setDefinition(h[h.length - 1]);
      return h.slice(0, -1);
    });
  }, []);

  const stepErrors = useMemo(() => (definition ? errorsByStep(problems, definition) : {}), [problems, definition]);
  const graph = useMemo(() => (definition ? toGraph(definition, positions) : { nodes: [], edges: [] }), [definition, positions]);
  const nodes: Node<StepNodeData>[] = useMemo(() => graph.nodes.map((n) => ({
    id: n.id, type: "step", position: n.position, selected: n.id === selected,
    data: { label: n.label, type: n.type, ports: portsOf(definition!.steps[n.id]), errors: stepErrors[n.id] ?? [], isStart: n.isStart },
  })), [graph, selected, stepErrors, definition]);
  const edges: Edge[] = useMemo(() => graph.edges.map((e) => ({
    id: e.id, source: e.source, sourceHandle: e.sourceHandle, target: e.target, label: e.label || undefined, deletable: true,
  })), [graph]);

  const onNodesChange = useCallback((changes: NodeChange<Node<StepNodeData>>[]) => {
    for (const c of changes) {
      if (c.type === "position" && c.position) setPositions((p) => ({ ...p, [c.id]: c.position! }));
      if (c.type === "select" && c.selected) setSelected(c.id);
    }
    applyNodeChanges(changes, nodes);
  }, [nodes]);

  if (loadError) return <ErrorState message={loadError} onRetry={() => { setLoadError(null); load(); }} />;
  if (!flow || !definition) return <Loading />;
  const dirty = JSON.stringify(definition) !== saved.current || name !== flow.name;

  async function save(): Promise<boolean> {
    setBusy(true);
    setNotice("");
    try {
      const data = await gql(`mutation($id: ID!, $input: FlowUpdateInput!) { flowUpdate(id: $id, input: $input) {
        errors { field code message } flow { validationErrors { path message } hasUnpublishedChanges } } }`, { id: flowId, input: { name, definition } });
      const r = data.flowUpdate;
      setErrors(fieldErrors(r.errors));
      if (r.errors.length) return false;
      saved.current = JSON.stringify(definition);
      setFlow({ ...flow!, name, hasUnpublishedChanges: r.flow.hasUnpublishedChanges });
      setProblems(r.flow.validationErrors);
      setNotice(r.flow.validationErrors.length ? `Draft saved with ${r.flow.validationErrors.length} problem(s) to fix before publishing.` : "Draft saved.");
      return true;
    } catch (error) {
      setErrors({ "": (error as Error).message });
      return false;
    } finally {
      setBusy(false);
    }
  }

  async function publish() {
    if (!(await save())) return;
    setBusy(true);
    try {
      const data = await gql(`mutation($id: ID!) { flowPublish(id: $id) { errors { field code message } version { number } flow { status liveVersion { number activeEnrolments } } } }`, { id: flowId });
      const r = data.flowPublish;
      if (r.errors.length) {
        setProblems(r.errors.map((e: FlowError) => ({ path: e.field ?? null, message: e.message })));
        setErrors(fieldErrors(r.errors.filter((e: FlowError) => !e.field?.startsWith("steps"))));
        setNotice("Not published: fix the problems marked on the steps.");
        return;
      }
      let moved = "";
      const previous = flow!.liveVersion;
      if (previous && previous.activeEnrolments > 0 && strategy !== "FINISH_ON_OLD") {
        const m = await gql(`mutation($id: ID!, $from: Int, $s: FlowMigrationStrategyEnum!) { flowEnrolmentsMigrate(id: $id, fromVersion: $from, strategy: $s) {
          errors { message } result { moved exited unchanged busy } } }`, { id: flowId, from: previous.number, s: strategy });
        const res = m.flowEnrolmentsMigrate;
        moved = res.errors.length ? ` Moving people failed: ${res.errors[0].message}` : ` ${res.result.moved} moved, ${res.result.exited} exited, ${res.result.unchanged} unchanged.`;
      }
      setFlow({ ...flow!, status: r.flow.status, liveVersion: r.flow.liveVersion, hasUnpublishedChanges: false });
      setProblems([]);
      setPublishing(false);
      setNotice(`Published version ${r.version.number}.${moved}`);
    } catch (error) {
      setErrors({ "": (error as Error).message });
    } finally {
      setBusy(false);
    }
  }

  async function setStatus(action: "flowPause" | "flowResume") {
    const data = await gql(`mutation($id: ID!) { ${action}(id: $id) { errors { message } flow { status } } }`, { id: flowId });
    const r = data[action];
    if (r.errors.length) setErrors({ "": r.errors[0].message });
    else setFlow({ ...flow!, status: r.flow.status });
  }

  const selectedStep = selected ? definition.steps[selected] : null;
  const onConnect = (c: Connection) => c.source && c.sourceHandle && change(connect(definition, c.source, c.sourceHandle, c.target));
  const onEdgesDelete = (removed: Edge[]) => {
    let next = definition;
    for (const e of removed) next = connect(next, e.source, e.sourceHandle!, null);
    change(next);
  };
  const onNodesDelete = (removed: Node[]) => {
    let next = definition;
    for (const n of removed) next = deleteStep(next, n.id);
    setSelected(null);
    change(next);
  };

  return (
    <Box display="flex" flexDirection="column" gap={3} onKeyDown={(e) => { if ((e.ctrlKey || e.metaKey) && e.key === "z") { e.preventDefault(); undo(); } }}>
      <PageHeader
        title={<Box display="flex" gap={2} alignItems="center" flexWrap="wrap"><span>{flow.name}</span><Badge tone={STATUS_TONE[flow.status]}>{humanize(flow.status.toLowerCase())}</Badge>
          {flow.liveVersion && <Badge>v{flow.liveVersion.number} live · {formatNumber(flow.liveVersion.activeEnrolments)} in it</Badge>}</Box>}
        subtitle={<a className="flows-link" href={href({ name: "report", flowId })}>Report →</a>}
        actions={<>
          <Button variant="secondary" onClick={undo} disabled={!history.length} aria-label="Undo (Ctrl+Z)">Undo</Button>
          <Button variant="secondary" onClick={save} disabled={busy || !dirty} data-testid="save-draft">Save draft</Button>
          <Button variant="secondary" onClick={() => setSimulating(true)} disabled={busy}>Simulate</Button>
          {flow.status === "LIVE" && <Button variant="secondary" onClick={() => setStatus("flowPause")}>Pause</Button>}
          {flow.status === "PAUSED" && <Button variant="secondary" onClick={() => setStatus("flowResume")}>Resume</Button>}
          <Button onClick={() => setPublishing(true)} disabled={busy} data-testid="publish">Publish…</Button>
        </>}
      />
      {errors[""] && <ErrorState message={errors[""]} />}
      {notice && <Text role="status" data-testid="builder-notice">{notice}</Text>}
      {stepErrors[""] && <Box role="alert">{stepErrors[""].map((m, i) => <Text key={i} as="p" color="critical1">{m}</Text>)}</Box>}
      {publishing && (
        <Card title="Publish" data-testid="publish-dialog">
          {flow.liveVersion && flow.liveVersion.activeEnrolments > 0 ? (
            <fieldset style={{ border: 0, padding: 0 }}>
              <legend><Text>{formatNumber(flow.liveVersion.activeEnrolments)} people are in version {flow.liveVersion.number}. What happens to them?</Text></legend>
              {[["FINISH_ON_OLD", "Let them finish on the version they started (safest)"], ["MOVE_AT_NEXT_STEP", "Move them to the new version at their next step (a step missing there exits them)"], ["EXIT", "Exit them from the flow"]].map(([value, label]) => (
                <label key={value} style={{ display: "block" }}><input type="radio" name="strategy" value={value} checked={strategy === value} onChange={() => setStrategy(value)} /> {label}</label>
              ))}
            </fieldset>
          ) : <Text>Nobody is in this flow yet: the new version applies to everyone who enters from now on.</Text>}
          <Box display="flex" gap={2}><Button onClick={publish} disabled={busy} data-testid="publish-confirm">Publish now</Button><Button variant="secondary" onClick={() => setPublishing(false)}>Cancel</Button></Box>
        </Card>
      )}
      {simulating && <SimulationPanel flowId={flowId} beforeRun={async () => (dirty ? save() : true)} onClose={() => setSimulating(false)} />}
      <Box display="flex" gap={2} alignItems="center" flexWrap="wrap" role="toolbar" aria-label="Steps">
        <label htmlFor="add-type"><Text size={2}>Add step</Text></label>
        <select id="add-type" className="flows-select" value={addType} onChange={(e) => setAddType(e.target.value)}>
          {Object.entries(STEP_TYPES).map(([type, label]) => <option key={type} value={type}>{label}</option>)}
        </select>
        <Button size="small" data-testid="add-step" onClick={() => { const r = addStep(definition, addType, selected); change(r.definition); setSelected(r.id); }}>
          {selected ? `Add after ${selected}` : "Add"}
        </Button>
        <Button size="small" variant="secondary" disabled={!selected} onClick={() => { change(deleteStep(definition, selected!)); setSelected(null); }}>Delete step</Button>
        <Button size="small" variant="tertiary" disabled={!selected} onClick={() => setSelected(null)}>Flow settings</Button>
        <Text size={2} color="default2">{Object.keys(definition.steps).length} step(s). Drag from a step's bottom handle to connect; Delete removes the selection.</Text>
      </Box>
      <div className="flows-two">
        <div className="flows-canvas" data-testid="canvas">
          <ReactFlowProvider>
          <ReactFlow nodes={nodes} edges={edges} nodeTypes={NODE_TYPES} onNodesChange={onNodesChange} onConnect={onConnect}
            onEdgesDelete={onEdgesDelete} onNodesDelete={onNodesDelete} onPaneClick={() => setSelected(null)}
            onNodeClick={(_, n) => setSelected(n.id)} fitView fitViewOptions={{ maxZoom: 1 }} minZoom={0.1} onlyRenderVisibleElements proOptions={{ hideAttribution: true }}>
            <Background /><Controls /><MiniMap pannable zoomable />
            <AutoFit count={nodes.length} />
          </ReactFlow>
          </ReactFlowProvider>
        </div>
        <Card title={selectedStep ? `${STEP_TYPES[selectedStep.type] ?? selectedStep.type}: ${selected}` : "Flow"}>
          {selectedStep ? (
            <StepEditor key={selected!} flowId={flowId} stepId={selected!} step={selectedStep} errors={stepErrors[selected!] ?? []}
              onChange={(step: Step) => change({ ...definition, steps: { ...definition.steps, [selected!]: step } })} ensureSaved={async () => (dirty ? save() : true)} />
          ) : (
            <>
              <label htmlFor="flow-name"><Text size={2}>Name</Text></label>
              <input id="flow-name" className="flows-input" value={name} onChange={(e) => setName(e.target.value)} aria-invalid={Boolean(errors.name)} aria-describedby="err-name" />
              <FieldError id="err-name" message={errors.name} />
              <TriggerEditor definition={definition} onChange={change} errors={errors} />
            </>
          )}
        </Card>
      </div>
    </Box>
  );
}
