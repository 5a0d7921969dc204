"""Machine opens and clicks: privacy proxies, security scanners, link previews, too-soon and burst clicks."""

import pytest

from saleor_flows.tracking import machine

HUMAN_AGENTS = [
    # Apple Mail on macOS when privacy protection is off: a full WebKit string
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    # iPhone Safari after a click
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    # Gmail's image proxy fetches when the person opens the message
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    # Outlook desktop
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E; "
    "Microsoft Outlook 16.0.17328; Microsoft Outlook 16.0.17328; ms-outlook-isapi)",
    # Android Chrome on a phone whose model name contains "bot"
    "Mozilla/5.0 (Linux; Android 9; CUBOT KINGKONG 5 Pro) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 "
    "Safari/537.36 Edg/122.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0 Thunderbird/115.8.0",
]

MACHINE_AGENTS = {
    "Mozilla/5.0": "apple_privacy_proxy",
    "  Mozilla/5.0 ": "apple_privacy_proxy",
    "": "no_user_agent",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.28 "
    "Safari/537.36": "automated_agent",
    "Barracuda Sentinel (EE)": "automated_agent",
    "Mozilla/5.0 (compatible; Mimecast Link Scanner)": "automated_agent",
    "Proofpoint URL Defense/1.0": "automated_agent",
    "Mozilla/5.0 (compatible; Google-Safety; +http://www.google.com/bot.html)": "automated_agent",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.127 "
    "Safari/537.36 SafeLinks": "automated_agent",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)": "automated_agent",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": "automated_agent",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)": "automated_agent",
    "python-requests/2.31.0": "automated_agent",
    "curl/8.5.0": "automated_agent",
    "Go-http-client/1.1": "automated_agent",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)": "automated_agent",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)": "automated_agent",
}


@pytest.mark.parametrize("agent", HUMAN_AGENTS)
def test_people_s_mail_clients_and_browsers_are_not_flagged(agent):
    assert machine.automated_agent(agent) is None
    assert machine.machine_reason(user_agent=agent, seconds_since_send=3600, threshold_seconds=5) is None


@pytest.mark.parametrize("agent,reason", MACHINE_AGENTS.items())
def test_proxies_scanners_and_libraries_are_flagged(agent, reason):
    assert machine.automated_agent(agent) == reason
    assert machine.machine_reason(user_agent=agent, seconds_since_send=3600, threshold_seconds=5) == reason


def test_timing_head_requests_and_bursts():
    human = HUMAN_AGENTS[1]
    judge = dict(user_agent=human, threshold_seconds=5)
    assert machine.machine_reason(**judge, seconds_since_send=2) == "too_soon_after_send"
    assert machine.machine_reason(**judge, seconds_since_send=-1) == "too_soon_after_send"  # ESP clock skew
    assert machine.machine_reason(**judge, seconds_since_send=5) is None
    assert machine.machine_reason(**judge, seconds_since_send=None) is None  # unknown send time: no timing rule
    assert machine.machine_reason(**judge, seconds_since_send=60, method="HEAD") == "head_request"
    assert machine.machine_reason(**judge, seconds_since_send=60, other_links_same_second=2) == \
        "many_links_in_one_second"
    # An ESP event without a user agent: only timing applies, "none" is not a machine sign.
    assert machine.machine_reason(user_agent=None, seconds_since_send=600, threshold_seconds=5) is None
