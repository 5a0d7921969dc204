import { Box, Button, DefaultTheme, Input, Text, ThemeProvider, useTheme } from "@saleor/macaw-ui";
import { useEffect, useState, type ReactNode } from "react";
import { href, useRoute, type Route } from "./router";
import { SessionProvider, useSession } from "./session";
import { Loading } from "./ui";
import { Home } from "./pages/Home";
import { Gallery } from "./pages/Gallery";
import { Builder } from "./pages/Builder";
import { Report } from "./pages/Report";
import { Contacts } from "./pages/Contacts";
import { Settings } from "./pages/Settings";
import { CustomerWidget, OrderWidget } from "./pages/Widgets";

export function App() {
  return (
    <SessionProvider>
      <ThemeProvider defaultTheme="defaultLight">
        <Themed />
      </ThemeProvider>
    </SessionProvider>
  );
}

/** Follows the Dashboard's theme (AppBridge `theme` events) with macaw-ui's light and dark themes. */
function Themed() {
  const session = useSession();
  const { setTheme } = useTheme();
  useEffect(() => {
    setTheme((session.theme === "dark" ? "defaultDark" : "defaultLight") as DefaultTheme);
  }, [session.theme, setTheme]);
  return (
    <Box backgroundColor="default1" color="default1" style={{ minHeight: "100vh" }} data-theme={session.theme}>
      <Shell />
    </Box>
  );
}

const NAV: { label: string; route: Route; match: Route["name"][] }[] = [
  { label: "Flows", route: { name: "home" }, match: ["home", "builder", "report"] },
  { label: "Templates", route: { name: "gallery" }, match: ["gallery"] },
  { label: "Contacts", route: { name: "contacts" }, match: ["contacts"] },
  { label: "Settings", route: { name: "settings" }, match: ["settings"] },
];

function Shell() {
  const route = useRoute();
  const session = useSession();
  if (!session.token) return session.embedded ? <Loading label="Connecting to the Dashboard…" /> : <SignIn />;
  if (route.name === "widget") return route.kind === "customer" ? <CustomerWidget /> : <OrderWidget />;
  return (
    <div className="flows-shell">
      <Box as="nav" aria-label="Flows sections" padding={3} borderRightWidth={1} borderRightStyle="solid" borderColor="default1" className="flows-nav">
        {NAV.map((item) => (
          <a key={item.label} href={href(item.route)} aria-current={item.match.includes(route.name) ? "page" : undefined}>
            <Text>{item.label}</Text>
          </a>
        ))}
        {!session.embedded && (
          <Box marginTop={4}><Button variant="tertiary" size="small" onClick={session.signOut}>Sign out</Button></Box>
        )}
      </Box>
      <Box as="main" className="flows-main" minWidth={0}>
        <Page route={route} />
      </Box>
    </div>
  );
}

function Page({ route }: { route: Route }): ReactNode {
  switch (route.name) {
    case "home":
      return <Home />;
    case "gallery":
      return <Gallery journeyKey={route.key} />;
    case "builder":
      return <Builder key={route.flowId} flowId={route.flowId} />;
    case "report":
      return <Report key={route.flowId} flowId={route.flowId} />;
    case "contacts":
      return <Contacts contactId={route.contactId} />;
    case "settings":
      return <Settings />;
    default:
      return <Text>This page does not exist. <a className="flows-link" href="#/">Back to flows</a></Text>;
  }
}

/** Outside the Dashboard: paste a staff token (kept for this tab only). */
function SignIn() {
  const session = useSession();
  const [value, setValue] = useState("");
  return (
    <Box as="main" padding={8} display="flex" flexDirection="column" gap={4} style={{ maxWidth: 600 }}>
      <Text as="h1" size={8} fontWeight="bold">Flows</Text>
      <Text>
        Open this page from the Saleor Dashboard (Apps → Flows), or sign in with a staff access token
        (for example from Saleor's <code>tokenCreate</code> mutation). It is kept for this browser tab only.
      </Text>
      <form onSubmit={(e) => { e.preventDefault(); if (value.trim()) session.signIn(value.trim()); }}>
        <Box display="flex" gap={2} alignItems="flex-end" flexWrap="wrap">
          <Input label="Staff token" value={value} onChange={(e) => setValue(e.target.value)} type="password" autoComplete="off" />
          <Button type="submit">Sign in</Button>
        </Box>
      </form>
    </Box>
  );
}
