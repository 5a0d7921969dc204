/** Hash routes (dashboard-contract): `#/`, `#/gallery/<key>`, `#/flows/<id>/report`, `#/widgets/customer`… */
import { useEffect, useState } from "react";

export type Route =
  | { name: "home" }
  | { name: "gallery"; key?: string }
  | { name: "builder"; flowId: string }
  | { name: "report"; flowId: string }
  | { name: "contacts"; contactId?: string }
  | { name: "settings" }
  | { name: "widget"; kind: "customer" | "order" }
  | { name: "notFound"; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "").split("?")[0].replace(/\/+$/, "") || "/";
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { name: "home" };
  const [head, id, sub] = parts;
  if (head === "gallery") return parts.length <= 2 ? { name: "gallery", key: id } : { name: "notFound", path };
  if (head === "flows" && id && !sub) return { name: "builder", flowId: id };
  if (head === "flows" && id && sub === "report" && parts.length === 3) return { name: "report", flowId: id };
  if (head === "contacts" && parts.length <= 2) return { name: "contacts", contactId: id };
  if (head === "settings" && parts.length === 1) return { name: "settings" };
  if (head === "widgets" && (id === "customer" || id === "order")) return { name: "widget", kind: id };
  return { name: "notFound", path };
}

export function href(route: Route): string {
  switch (route.name) {
    case "home":
      return "#/";
    case "gallery":
      return route.key ? `#/gallery/${encodeURIComponent(route.key)}` : "#/gallery";
    case "builder":
      return `#/flows/${encodeURIComponent(route.flowId)}`;
    case "report":
      return `#/flows/${encodeURIComponent(route.flowId)}/report`;
    case "contacts":
      return route.contactId ? `#/contacts/${encodeURIComponent(route.contactId)}` : "#/contacts";
    case "settings":
      return "#/settings";
    case "widget":
      return `#/widgets/${route.kind}`;
    default:
      return "#/";
  }
}

export function navigate(route: Route) {
  window.location.hash = href(route);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

/**
 * A URL parameter the Dashboard passes to an extension (`customerId`, `orderId`, `id`, `theme`…).
 * Saleor appends them to the query string; a URL that carries them after the hash works too.
 */
export function pageParam(name: string, href = window.location.href): string | null {
  const url = new URL(href);
  const fromQuery = url.searchParams.get(name);
  if (fromQuery) return fromQuery;
  const hashQuery = url.hash.split("?")[1];
  return hashQuery ? new URLSearchParams(hashQuery).get(name) : null;
}
