import { describe, expect, it } from "vitest";
import { fieldErrors, apiUrl } from "./api";
import { fillDays, formatMoney, formatRevenue, formatPercent, isoDaysAgo, smsSegments } from "./format";
import { parseRoute, href, pageParam } from "./router";
import { settingsInput } from "./pages/Settings";
import { funnelOf } from "./pages/Report";
import { mergeRevenue } from "./pages/Home";

describe("formatting", () => {
  it("formats money per currency and never sums currencies", () => {
    expect(formatMoney({ currency: "EUR", amount: "12.5" }, "en")).toBe("€12.50");
    expect(formatRevenue([{ currency: "USD", amount: "3" }, { currency: "EUR", amount: "4" }], "en")).toBe("$3.00 · €4.00");
    expect(mergeRevenue([{ currency: "USD", amount: "1.10" }, { currency: "USD", amount: "2" }, { currency: "EUR", amount: "1" }]))
      .toEqual([{ currency: "USD", amount: "3.10" }, { currency: "EUR", amount: "1.00" }]);
    expect(formatRevenue([], "en")).toBe("–");
    expect(formatPercent(0.1234)).toBe("12.3%");
    expect(formatPercent(null)).toBe("–");
  });

  it("counts SMS segments as carriers do", () => {
    expect(smsSegments("a".repeat(160))).toMatchObject({ encoding: "GSM-7", segments: 1 });
    expect(smsSegments("a".repeat(161))).toMatchObject({ encoding: "GSM-7", segments: 2, perSegment: 153 });
    expect(smsSegments("€".repeat(80))).toMatchObject({ encoding: "GSM-7", characters: 160, segments: 1 });
    expect(smsSegments("Grüße 😀")).toMatchObject({ encoding: "UCS-2", segments: 1 });
    expect(smsSegments("ü😀".repeat(30))).toMatchObject({ encoding: "UCS-2", characters: 90, segments: 2 });
  });

  it("date presets are inclusive ISO days", () => {
    expect(isoDaysAgo(0, new Date("2026-03-01T23:00:00Z"))).toBe("2026-03-01");
    expect(isoDaysAgo(29, new Date("2026-03-01T10:00:00Z"))).toBe("2026-01-31");
  });

  it("fills the quiet days of a range with zeros, keeping the days with data", () => {
    const rows = fillDays([{ day: "2026-03-02", sent: 4 }], "2026-02-28", "2026-03-03", (day) => ({ day, sent: 0 }));
    expect(rows).toEqual([{ day: "2026-02-28", sent: 0 }, { day: "2026-03-01", sent: 0 }, { day: "2026-03-02", sent: 4 }, { day: "2026-03-03", sent: 0 }]);
    expect(fillDays([], "2026-01-01", "2030-01-01", (day) => ({ day }))).toHaveLength(400);
  });

  it("the funnel reads from entered to ordered", () => {
    expect(funnelOf({ entered: 10, sent: 9, delivered: 8, opened: 5, clicked: 2, orders: 1 }).map((s) => s.count)).toEqual([10, 9, 8, 5, 2, 1]);
  });
});

describe("API client", () => {
  it("calls ../graphql/ from the page, whatever the query string or hash", () => {
    expect(apiUrl("https://shop.example/plugins/global/saleor.flows/app/?id=QXBw&theme=dark#/flows/Rmxvdzox/report"))
      .toBe("https://shop.example/plugins/global/saleor.flows/graphql/");
  });

  it("maps mutation errors to their fields, joining several on one field", () => {
    expect(fieldErrors([{ field: "quietHours.email", message: "Use HH:MM-HH:MM." }, { field: null, message: "Nope." }, { field: "quietHours.email", message: "Again." }]))
      .toEqual({ "quietHours.email": "Use HH:MM-HH:MM. Again.", "": "Nope." });
  });

  it("sends empty settings fields as unset", () => {
    expect(settingsInput({ capEmail: "24", capSms: "", quietEmail: " 21:00-08:00 ", quietSms: "", senders: [{ channel: " eu ", fromEmail: "", replyTo: null, smsFrom: "Shop" }], topics: [{ key: "news", label: "" }, { key: " ", label: "x" }] }))
      .toEqual({ frequencyCapHours: { email: 24, sms: null }, quietHours: { email: "21:00-08:00", sms: null },
        senders: [{ channel: "eu", fromEmail: null, replyTo: null, smsFrom: "Shop" }], topics: [{ key: "news", label: { en: "news" } }] });
  });
});

describe("hash routes (the contract's URLs)", () => {
  it.each([
    ["", { name: "home" }], ["#/", { name: "home" }], ["#/gallery", { name: "gallery", key: undefined }],
    ["#/gallery/abandoned_checkout", { name: "gallery", key: "abandoned_checkout" }],
    ["#/flows/Rmxvdzox", { name: "builder", flowId: "Rmxvdzox" }], ["#/flows/Rmxvdzox/report", { name: "report", flowId: "Rmxvdzox" }],
    ["#/contacts", { name: "contacts", contactId: undefined }], ["#/contacts/Q29udGFjdDox", { name: "contacts", contactId: "Q29udGFjdDox" }],
    ["#/settings", { name: "settings" }], ["#/widgets/customer", { name: "widget", kind: "customer" }], ["#/widgets/order?orderId=T3JkZXI6MQ==", { name: "widget", kind: "order" }],
    ["#/flows/x/y/z", { name: "notFound", path: "/flows/x/y/z" }],
  ])("%s", (hash, route) => {
    expect(parseRoute(hash)).toEqual(route);
    if (route.name !== "notFound" && !hash.includes("?") && hash.length > 2) expect(parseRoute(href(route as never))).toEqual(route);
  });

  it("reads the Dashboard's params from the query string or after the hash", () => {
    expect(pageParam("customerId", "https://x/app/?customerId=VXNlcjox#/widgets/customer")).toBe("VXNlcjox");
    expect(pageParam("orderId", "https://x/app/#/widgets/order?orderId=T3JkZXI6MQ%3D%3D")).toBe("T3JkZXI6MQ==");
    expect(pageParam("orderId", "https://x/app/#/widgets/order")).toBeNull();
  });
});
