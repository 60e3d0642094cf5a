"""Web identities: what a website or an e-mail address says about who is behind it.

A firm's own domain ("rosneft.ru") identifies it: mail or a website there ties a customer to the firm. A shared
host does not: the lists name gmail.com, mail.ru, qq.com or facebook.com in dozens of entries (a listed party's
mailbox or page there), and millions of unrelated people and firms use the same hosts. On a shared host only the
whole address identifies a party: the mailbox ("kaikaitech@gmail.com") or the page ("facebook.com/porticellomalta").
"""

from __future__ import annotations

import re

# Free mail providers and public platforms that appear in the bundled lists' remarks, and their common peers
# (webmail in the countries the lists cover most: Russia, China, Iran, Korea; social networks and site builders).
SHARED_HOSTS: frozenset[str] = frozenset(
    {
        # mail
        "gmail.com",
        "googlemail.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "protonmail.com",
        "proton.me",
        "pm.me",
        "tutanota.com",
        "zoho.com",
        "mail.com",
        "email.com",
        "usa.com",
        "gmx.net",
        "web.de",
        "rediffmail.com",
        "mail.ru",
        "inbox.ru",
        "list.ru",
        "bk.ru",
        "internet.ru",
        "ya.ru",
        "rambler.ru",
        "ukr.net",
        "i.ua",
        "meta.ua",
        "tut.by",
        "qq.com",
        "foxmail.com",
        "163.com",
        "126.com",
        "yeah.net",
        "188.com",
        "139.com",
        "sina.com",
        "sina.cn",
        "sohu.com",
        "aliyun.com",
        "naver.com",
        "daum.net",
        "hanmail.net",
        "chmail.ir",
        # platforms
        "facebook.com",
        "fb.com",
        "instagram.com",
        "twitter.com",
        "x.com",
        "t.me",
        "telegram.me",
        "vk.com",
        "ok.ru",
        "linkedin.com",
        "youtube.com",
        "tiktok.com",
        "google.com",
        "blogspot.com",
        "wordpress.com",
        "wixsite.com",
        "weebly.com",
        "tumblr.com",
        "medium.com",
        "github.com",
        "github.io",
        "weibo.com",
    }
)

# Providers that run the same mail service under many country domains (yahoo.fr, hotmail.nl, live.cn, yandex.ru,
# outlook.kr, yahoo.co.uk, yahoo.com.cn): the provider's label followed by a public suffix of short labels only.
SHARED_FAMILIES: frozenset[str] = frozenset(
    {"yahoo", "ymail", "rocketmail", "hotmail", "outlook", "live", "msn", "aol", "gmx", "yandex"}
)

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def is_shared_host(host: str) -> bool:
    """Whether a host name (lower case, no `www.`) is a free mail provider or a public platform, or a host under
    one ("sites.google.com", "name.github.io")."""
    labels = host.strip(".").split(".")
    for i in range(len(labels) - 1):
        if ".".join(labels[i:]) in SHARED_HOSTS:
            return True
    # yahoo.co.uk, hotmail.nl: a family's label directly before a public suffix of one or two short labels
    return (
        len(labels) in (2, 3)
        and labels[0] in SHARED_FAMILIES
        and all(len(label) <= 3 and label.isalpha() for label in labels[1:])
    )


def host_of(value: str | None) -> str | None:
    """The host of a website, an e-mail address or a bare domain: lower case, without scheme, port, path or
    `www.`."""
    if not value:
        return None
    text = _SCHEME.sub("", value.strip().lower())
    host = text.split("/")[0].split("@")[-1].split(":")[0].rstrip(".")
    return host.removeprefix("www.") or None


def identity(value: str | None) -> str | None:
    """What identifies a party in a website or e-mail address: its own domain, or on a shared host the whole
    address (`mailbox@host`, or `host/first/path` for a page). None for an empty value."""
    host = host_of(value)
    if host is None or value is None:
        return None
    if not is_shared_host(host):
        return host
    text = _SCHEME.sub("", value.strip().lower())
    if "@" in text.split("/")[0]:
        return text.split("/")[0].rstrip(".")
    path = [part for part in text.split("?")[0].split("#")[0].rstrip(".").split("/")[1:] if part]
    return "/".join([host, *path[:1]]) if path else host


def identifies(value: str) -> bool:
    """Whether an identity names one party: an own domain, or a whole address on a shared host (a shared host
    alone names no one)."""
    host = host_of(value)
    return host is not None and (not is_shared_host(host) or value != host)
