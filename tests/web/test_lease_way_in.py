"""A way in from the dashboard: the lease page says how to run on the lease (CLI and API, its id filled in),
starts a run from a form and follows the run's log live; and the rough edges of the lease pages: the booking
form's defaults match their hints, an ended lease shows its real end, an on-demand lease advertises no
cancellation fee."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from gpulease.web.runs import command_line
from tests.conftest import Clock, needs_bwrap
from tests.web.conftest import Site, csrf_of, form
from tests.web.test_pages import book, lease_id

Browser = Callable[[str], TestClient]


def test_the_booking_form_defaults_to_now_and_open_ended_as_its_hints_say(browser: Browser, site: Site) -> None:
    cu = browser(site.cleared.key)
    page = cu.get("/leases").text
    assert re.search(r'name="start" value=""', page) and "empty: now" in page
    assert re.search(r'name="end" value=""', page) and "empty: open-ended" in page
    fields = dict(re.findall(r'<input type="(?:number|datetime-local)" name="(\w+)"[^>]*value="([^"]*)"', page))
    lid = lease_id(book(cu, gpu_count=fields["gpu_count"], start=fields["start"], end=fields["end"]))
    lease = cu.get(f"/leases/{lid}").text
    assert "badge s-active" in lease and "→ open-ended" in lease  # on demand, now, until ended


def test_the_lease_page_says_how_to_run_on_it(browser: Browser, site: Site) -> None:
    cu = browser(site.cleared.key)
    lid = lease_id(book(cu))
    page = html.unescape(cu.get(f"/leases/{lid}").text)
    assert "Run on this lease" in page
    assert f"gpulease run {lid} -- nvidia-smi" in page and f"gpulease leases end {lid}" in page
    assert f"http://testserver/api/v1/leases/{lid}/runs" in page and f"/api/v1/leases/{lid}/runs/RUN/logs" in page
    assert "export GPULEASE_API_URL=http://testserver" in page
    assert f'action="/leases/{lid}/runs"' in page and "Start run" in page

    compliance = browser(site.compliance)
    seen = compliance.get(f"/leases/{lid}").text
    assert "Start run" not in seen and "Run on this lease" not in seen
    r = compliance.post(f"/leases/{lid}/runs", data=form(csrf_of(seen), command="id"), follow_redirects=False)
    assert r.status_code == 403 and "operator or customer role" in html.unescape(r.text), r.text[-3000:]


def test_a_command_that_cannot_be_read_is_refused_on_the_lease_page(browser: Browser, site: Site) -> None:
    cu = browser(site.cleared.key)
    lid = lease_id(book(cu))
    page = cu.get(f"/leases/{lid}").text
    r = cu.post(f"/leases/{lid}/runs", data=form(csrf_of(page), command='python -c "print(1)'))
    assert r.status_code == 422 and "the command cannot be read" in r.text
    assert 'value="python -c &#34;print(1)"' in r.text  # what was typed stays
    assert command_line("python -c 'print(1, 2)'") == ["python", "-c", "print(1, 2)"]


def test_a_scheduled_lease_offers_no_run_form_yet(browser: Browser, site: Site) -> None:
    cu = browser(site.cleared.key)
    lid = lease_id(book(cu, plan="reserved", start="2026-11-03T09:00", end="2026-11-03T17:00"))
    page = cu.get(f"/leases/{lid}").text
    assert "Start run" not in page and "once the lease is active" in page
    assert "Free cancellation" in page and "50% fee" in page  # a reserved window: the fee applies
    # before its start: when it starts and for how long, not "Ran 0 min"
    assert re.search(r'id="not-started">starts 2026-11-03 09:00[^<]*; booked for 8 h 00 min<', page), page
    assert "<dt>Ran</dt>" not in page


def test_an_on_demand_lease_advertises_no_cancellation_fee_and_an_ended_one_its_real_end(
    browser: Browser, site: Site, clock: Clock
) -> None:
    cu = browser(site.cleared.key)
    lid = lease_id(book(cu))
    page = cu.get(f"/leases/{lid}").text
    assert "% fee" not in page and "Free cancellation" not in page
    assert "Cancellation</dt><dd>free" in page
    assert re.search(r"\d+\.\d\d USD per GPU-hour", page), page  # money with its cents
    clock.advance(hours=2)
    r = cu.post(f"/leases/{lid}/end", data=form(csrf_of(page)), follow_redirects=True)
    assert r.status_code == 200 and "badge s-ended" in r.text
    assert "open-ended" not in r.text and "2026-11-02 09:00 UTC → 2026-11-02 11:00 UTC" in r.text
    listed = cu.get("/leases").text
    row = re.search(rf'<a href="/leases/{lid}">#{lid}</a>.*?</tr>', listed, re.S)
    assert row and "open-ended" not in row.group(0) and "2026-11-02 11:00 UTC" in row.group(0)


@needs_bwrap
def test_start_a_run_from_the_lease_page_and_follow_its_log(browser: Browser, site: Site) -> None:
    cu = browser(site.cleared.key)
    lid = lease_id(book(cu))
    page = cu.get(f"/leases/{lid}").text
    command = "sh -c 'echo started; sleep 0.5; echo \"<done>\" on $CUDA_VISIBLE_DEVICES'"
    r = cu.post(f"/leases/{lid}/runs", data=form(csrf_of(page), command=command), follow_redirects=False)
    assert r.status_code == 303, r.text
    where = str(r.headers["location"])
    m = re.fullmatch(rf"/leases/{lid}/runs/([0-9a-f]{{16}})", where)
    assert m, where
    run_page = cu.get(where).text
    assert "sh -c echo started" in html.unescape(run_page)
    poll = re.search(r'hx-get="([^"]+/log\?offset=0)"', run_page)
    assert poll, run_page

    # Follow it as htmx does: each answer appends text and (until the run is done) the element asking for more.
    url: str | None = poll.group(1)
    log, deadline = "", time.monotonic() + 20
    final = ""
    while url:
        assert time.monotonic() < deadline, log
        part = cu.get(url, headers={"HX-Request": "true"})
        assert part.status_code == 200, part.text
        nxt = re.search(r'hx-get="([^"]+)"', part.text)
        text = part.text.split("<span", 1)[0]
        log += html.unescape(text)
        if nxt is None:
            final = part.text
        url = html.unescape(nxt.group(1)) if nxt else None
        if url and not text:
            time.sleep(0.2)
    assert "started" in log and "<done> on" in log, log
    assert "&lt;done&gt;" in cu.get(where + "/log?offset=0").text  # escaped, never markup
    assert 'id="run-state" hx-swap-oob="true"' in final and "badge s-succeeded" in final, final
    lease = cu.get(f"/leases/{lid}").text
    assert f'href="{where}"' in lease

    other = browser(site.flagged.key)
    assert other.get(where).status_code == 404  # another tenant's run is not there
