"""Listed domains: a firm's own domain ties a customer to it; a free mail provider or public platform does not.

The lists name gmail.com in 34 entries, mail.ru in 22, qq.com in 10, facebook.com in 2 (a listed party's mailbox or
page there): a customer writing from gmail.com was denied for it."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from gpulease.compliance import web
from gpulease.compliance.index import ScreeningIndex
from gpulease.compliance.lists.source import domains_in
from gpulease.compliance.redflags import KycProfile, RedFlag, RedFlagRules, evaluate


def _domain_flags(index: ScreeningIndex, email_domain: str | None = None, website: str | None = None) -> list[RedFlag]:
    profile = KycProfile(legal_name="Blue Meadow LLC", country="US", email_domain=email_domain, website=website)
    return [f for f in evaluate(profile, index, RedFlagRules(), date(2026, 11, 27), {}) if f.rule == "listed_domain"]


@pytest.mark.parametrize(
    "host",
    (
        *("gmail.com", "yahoo.com", "yahoo.co.uk", "yahoo.com.cn", "hotmail.nl", "live.cn", "outlook.kr", "yandex.ru"),
        *("mail.ru", "qq.com", "163.com", "facebook.com", "sites.google.com", "someone.github.io", "t.me"),
    ),
)
def test_free_mail_and_platforms_are_shared_hosts(host: str) -> None:
    assert web.is_shared_host(host)


@pytest.mark.parametrize("host", ["rosneft.ru", "iflytek.com", "mail.rosneft.ru", "livetech.com", "yahoo-finance.ru"])
def test_a_firms_own_domain_is_not_shared(host: str) -> None:
    assert not web.is_shared_host(host)


def test_identity_keeps_the_whole_address_on_a_shared_host_only() -> None:
    assert web.identity("https://www.Rosneft.ru/about/") == "rosneft.ru"
    assert web.identity("info@kk-pu.com") == "kk-pu.com"
    assert web.identity("KaikaiTech@gmail.com") == "kaikaitech@gmail.com"
    assert web.identity("https://www.facebook.com/PorticelloMalta/?ref=x") == "facebook.com/porticellomalta"
    assert web.identity("gmail.com") == "gmail.com"
    assert web.identity("") is None
    assert web.identifies("facebook.com/porticellomalta") and web.identifies("rosneft.ru")
    assert not web.identifies("gmail.com")


def test_lists_remarks_give_mailboxes_and_pages_on_shared_hosts() -> None:
    remarks = (
        "Website www.facebook.com/porticellomalta; Email Address porticellomalta@gmail.com; "
        "alt. Email Address info@kk-pu.com; Website http://en.media.transneft.ru/; Website www.rosneft.ru."
    )
    assert domains_in(remarks) == (
        "facebook.com/porticellomalta",
        "en.media.transneft.ru",
        "rosneft.ru",
        "porticellomalta@gmail.com",
        "kk-pu.com",
    )


def test_the_bundled_lists_hold_no_bare_shared_host(index: ScreeningIndex) -> None:
    bare = {w for e in index.entries for w in e.websites if not web.identifies(w)}
    assert not bare
    assert any(w.endswith("@gmail.com") for e in index.entries for w in e.websites)


@pytest.mark.parametrize("email_domain", ["gmail.com", "yahoo.com", "hotmail.com", "qq.com", "mail.ru", "163.com"])
def test_a_customer_on_free_mail_is_not_tied_to_the_listed_users_of_it(
    index: ScreeningIndex, email_domain: str
) -> None:
    assert _domain_flags(index, email_domain=email_domain, website="https://www.facebook.com/bluemeadow") == []


def test_a_listed_mailbox_or_page_on_a_shared_host_is_still_found(index: ScreeningIndex) -> None:
    (page,) = _domain_flags(index, website="https://www.facebook.com/porticellomalta/")
    assert page.severity == "deny" and "SDN-23204" in page.evidence and "facebook.com/porticellomalta" in page.evidence
    (mailbox,) = _domain_flags(index, email_domain="kaikaitech@gmail.com")
    assert mailbox.severity == "deny" and "SDN-18661" in mailbox.evidence


def test_a_listed_firms_own_domain_denies_on_a_blocking_list_and_reviews_on_ssi(index: ScreeningIndex) -> None:
    flags = _domain_flags(index, email_domain="mail.rosneft.ru")
    assert flags and all(f.severity == "review" and "SSI" in f.evidence for f in flags)
    assert all("not a blocking list" in f.evidence for f in flags)
    (iflytek,) = _domain_flags(index, website="https://www.iflytek.com")
    assert iflytek.severity == "deny" and "IFLYTEK" in iflytek.evidence


def test_a_list_stored_with_bare_shared_hosts_does_not_tie_their_users(index: ScreeningIndex) -> None:
    """A list version stored before shared hosts were told apart still holds "gmail.com" as a website."""
    entry = next(e for e in index.entries if e.websites)
    stale = ScreeningIndex.build([dataclasses.replace(entry, websites=("gmail.com", "facebook.com"))])
    assert _domain_flags(stale, email_domain="gmail.com", website="https://facebook.com/bluemeadow") == []
