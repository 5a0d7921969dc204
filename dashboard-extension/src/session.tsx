/**
 * Who is calling the API, and in which theme and locale.
 * Inside the Dashboard (the page is in an iframe): @saleor/app-sdk's AppBridge, whose handshake brings
 * the token (refreshed by `tokenRefresh`), the theme and the locale.
 * Outside it (a plain Django host): a staff token given once as `?token=` (then removed from the
 * address bar) or pasted on the sign-in form, kept in sessionStorage for the tab only.
 */
import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { AppBridge, actions } from "@saleor/app-sdk/app-bridge";
import { setToken } from "./api";
import { pageParam } from "./router";

export type Theme = "light" | "dark";
type Session = {
  token: string | null;
  theme: Theme;
  locale: string;
  embedded: boolean;
  bridge: AppBridge | null;
  signIn: (token: string) => void;
  signOut: () => void;
};

const STORAGE_KEY = "saleor-flows-staff-token";
const SessionContext = createContext<Session | null>(null);

export function isEmbedded(): boolean {
  try {
    return window.self !== window.top;
  } catch {
    return true; // a cross-origin parent: certainly embedded
  }
}

let bridgeSingleton: AppBridge | null = null;
function bridge(): AppBridge {
  bridgeSingleton ??= new AppBridge();
  return bridgeSingleton;
}

function initialTheme(): Theme {
  const fromUrl = pageParam("theme");
  if (fromUrl === "dark" || fromUrl === "light") return fromUrl;
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const embedded = useMemo(isEmbedded, []);
  const [token, setTokenState] = useState<string | null>(() => {
    if (embedded) return null;
    const given = pageParam("token");
    if (given) {
      sessionStorage.setItem(STORAGE_KEY, given);
      const url = new URL(window.location.href);
      url.searchParams.delete("token");
      window.history.replaceState(null, "", url.toString());
      return given;
    }
    return sessionStorage.getItem(STORAGE_KEY);
  });
  const [theme, setTheme] = useState<Theme>(initialTheme);
  const [locale, setLocale] = useState(() => pageParam("locale") || navigator.language || "en");

  useEffect(() => {
    if (!embedded) return;
    const appBridge = bridge();
    const apply = () => {
      const state = appBridge.getState();
      if (state.token) setTokenState(state.token);
      if (state.theme) setTheme(state.theme);
      if (state.locale) setLocale(state.locale);
    };
    apply();
    const unsubscribes = [
      appBridge.subscribe("handshake", apply),
      appBridge.subscribe("tokenRefresh", apply),
      appBridge.subscribe("theme", apply),
      appBridge.subscribe("localeChanged", apply),
    ];
    return () => unsubscribes.forEach((off) => off());
  }, [embedded]);

  setToken(token);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    document.documentElement.style.colorScheme = theme;
  }, [theme]);

  const value: Session = {
    token,
    theme,
    locale,
    embedded,
    bridge: embedded ? bridge() : null,
    signIn: (given) => {
      sessionStorage.setItem(STORAGE_KEY, given);
      setTokenState(given);
    },
    signOut: () => {
      sessionStorage.removeItem(STORAGE_KEY);
      setTokenState(null);
    },
  };
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}

/** Tell the Dashboard a widget's height (WIDGET extensions), ignoring a Dashboard too old for it. */
export function reportHeight(session: Session, height: number) {
  if (!session.bridge || height <= 0) return;
  session.bridge.dispatch(actions.WidgetResize({ height: Math.ceil(height) })).catch(() => undefined);
}
