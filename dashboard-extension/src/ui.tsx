/** Small building blocks shared by the screens, on macaw-ui: loading / empty / error states, cards, field errors. */
import { Box, Button, Spinner, Text } from "@saleor/macaw-ui";
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { gql } from "./api";

export type Loadable<T> = { data: T | null; error: string | null; loading: boolean; reload: () => void };

/** Runs a query when `variables` change; the screen renders loading / error / data. */
export function useQuery<T>(query: string, variables: Record<string, unknown> = {}, enabled = true): Loadable<T> {
  const key = JSON.stringify(variables);
  const [state, setState] = useState<{ data: T | null; error: string | null; loading: boolean }>({ data: null, error: null, loading: enabled });
  const [tick, setTick] = useState(0);
  const latest = useRef(0);
  useEffect(() => {
    if (!enabled) return;
    const call = ++latest.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    gql<T>(query, JSON.parse(key)).then(
      (data) => call === latest.current && setState({ data, error: null, loading: false }),
      (error: Error) => call === latest.current && setState({ data: null, error: error.message, loading: false }),
    );
  }, [query, key, tick, enabled]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <Box display="flex" alignItems="center" gap={2} padding={6} role="status" aria-live="polite">
      <Spinner />
      <Text color="default2">{label}</Text>
    </Box>
  );
}

export function ErrorState({ message, onRetry }: { message: string; onRetry?: () => void }) {
  return (
    <Box role="alert" padding={4} borderRadius={4} borderWidth={1} borderStyle="solid" borderColor="critical1" backgroundColor="critical1" display="flex" gap={3} alignItems="center" flexWrap="wrap">
      <Text color="critical2">{message}</Text>
      {onRetry && <Button variant="secondary" size="small" onClick={onRetry}>Try again</Button>}
    </Box>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <Box padding={8} display="flex" flexDirection="column" alignItems="center" gap={3} borderWidth={1} borderStyle="solid" borderColor="default1" borderRadius={4}>
      <Text size={5} fontWeight="bold">{title}</Text>
      {children}
    </Box>
  );
}

export function Card({ title, actions, children, ...rest }: { title?: ReactNode; actions?: ReactNode; children: ReactNode; [key: string]: unknown }) {
  return (
    <Box as="section" padding={4} borderRadius={4} borderWidth={1} borderStyle="solid" borderColor="default1" backgroundColor="default1" display="flex" flexDirection="column" gap={3} {...rest}>
      {(title || actions) && (
        <Box display="flex" justifyContent="space-between" alignItems="center" gap={2} flexWrap="wrap">
          {title && <Text as="h2" size={5} fontWeight="bold">{title}</Text>}
          {actions}
        </Box>
      )}
      {children}
    </Box>
  );
}

export function PageHeader({ title, subtitle, actions }: { title: ReactNode; subtitle?: ReactNode; actions?: ReactNode }) {
  return (
    <Box display="flex" justifyContent="space-between" alignItems="flex-start" gap={3} flexWrap="wrap" marginBottom={4}>
      <Box display="flex" flexDirection="column" gap={1}>
        <Text as="h1" size={8} fontWeight="bold">{title}</Text>
        {subtitle && <Text color="default2">{subtitle}</Text>}
      </Box>
      {actions && <Box display="flex" gap={2} flexWrap="wrap">{actions}</Box>}
    </Box>
  );
}

/** An API error shown under the field it concerns. */
export function FieldError({ id, message }: { id: string; message?: string }) {
  if (!message) return null;
  return <Text id={id} role="alert" size={2} color="critical1" data-field-error>{message}</Text>;
}

export function Badge({ tone = "neutral", children }: { tone?: "neutral" | "success" | "warning" | "critical" | "info"; children: ReactNode }) {
  const colours = { neutral: "default2", success: "success1", warning: "warning1", critical: "critical1", info: "info1" } as const;
  return (
    <Box as="span" paddingX={2} paddingY={0.5} borderRadius={4} backgroundColor={colours[tone] as never} display="inline-flex">
      <Text size={2} fontWeight="medium">{children}</Text>
    </Box>
  );
}

export const STATUS_TONE: Record<string, "neutral" | "success" | "warning" | "critical" | "info"> = {
  LIVE: "success",
  ACTIVE: "success",
  DRAFT: "neutral",
  PAUSED: "warning",
  ARCHIVED: "neutral",
  CONVERTED: "info",
  COMPLETED: "neutral",
  EXITED: "warning",
};

/** A plain, themed <table> that scrolls sideways on narrow screens instead of breaking the layout. */
export function Table({ columns, rows, caption }: { columns: ReactNode[]; rows: ReactNode[][]; caption?: string }) {
  return (
    <Box overflowX="auto" width="100%">
      <table className="flows-table">
        {caption && <caption className="visually-hidden">{caption}</caption>}
        <thead>
          <tr>{columns.map((c, i) => <th key={i} scope="col">{c}</th>)}</tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={i}>{row.map((cell, j) => <td key={j}>{cell}</td>)}</tr>
          ))}
        </tbody>
      </table>
    </Box>
  );
}
