"""CPU leases on the dashboard (issue 13): the overview's CPU calendar (a row per node whose CPUs are leased, a bar
per CPU lease), the inventory page's CPU nodes and leasable cores, and a CPU lease's page with its cpuset."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.api.test_cpu_leases import cpu_node, cpu_prices, dgx
from tests.conftest import Clock, Facility
from tests.web.conftest import Site
from tests.web.test_pages import book, lease_id

Browser = Callable[[str], TestClient]


def test_cpu_nodes_and_leases_on_the_calendar_inventory_and_lease_page(
    browser: Browser, site: Site, facility: Facility, clock: Clock
) -> None:
    cpu_node(facility, "fra1-cpu-0")
    dgx(facility)
    cpu_prices(facility)
    facility.prices("H100-80GB")
    cust = facility.customer("Cores Ltd")
    lease = facility.lease(customer_id=cust["id"], cpu_cores=16, memory_gib=128)
    gpu = facility.lease(customer_id=cust["id"], gpu_model="H100-80GB", gpu_count=1)
    op = browser(site.operator)

    page = op.get("/").text
    assert 'class="gantt gantt-cpu"' in page and 'id="cpu-calendar"' in page
    cpu_svg = page[page.index('class="gantt gantt-cpu"') :]
    assert f'data-lease="{lease["id"]}" data-cores="16"' in cpu_svg
    assert "16/192 cores" in cpu_svg and "16 cores (0-15), 128 GiB" in cpu_svg
    assert f'data-lease="{gpu["id"]}"' not in cpu_svg  # a GPU lease's share is not a CPU lease

    nodes = op.get("/nodes").text
    assert "192 leasable EPYC-9654 cores" in nodes and "16 leasable Xeon-8480+ cores" in nodes
    assert "16/192 cores" in nodes

    listed = op.get("/leases").text
    assert "16 cores EPYC-9654" in listed and "0× None" not in listed

    shown = op.get(f"/leases/{lease['id']}").text
    assert "16 EPYC-9654 cores, 128 GiB" in shown and "<code>0-15</code>" in shown and "per core-hour" in shown
    gpu_page = op.get(f"/leases/{gpu['id']}").text
    assert "<code>0-11</code>" in gpu_page  # its GPU's share of the node, the cores its runs are pinned to


def test_the_booking_form_books_a_cpu_lease_and_shows_its_cores(
    browser: Browser, site: Site, facility: Facility
) -> None:
    cpu_node(facility, "fra1-cpu-0", model="EPYC-9554", cores=64, gib=512)
    cpu_prices(facility, "EPYC-9554")
    cu = browser(site.cleared.key)  # the customer books for itself, as on the API
    page = cu.get("/leases").text
    assert "Book GPUs or CPU cores" in page and 'name="cpu_cores"' in page and '<option value="cpu"' in page
    where = book(cu, resource="cpu", cpu_cores=8, memory_gib=48, cpu_model="EPYC-9554")
    lid = lease_id(where)
    shown = cu.get(where).text
    assert f"Lease #{lid}" in shown and "8 EPYC-9554 cores, 48 GiB" in shown and "<code>0-7</code>" in shown
    # the same lease through the API: the form went through the same service
    api = facility.c.get(f"/api/v1/leases/{lid}", headers=facility.k.op).json()
    assert api["resource"] == "cpu" and api["cpu_cores"] == 8 and api["memory_gib"] == 48
    assert api["cores"][0]["cpuset"] == "0-7" and api["gpus"] == [] and api["customer_id"] == site.cleared.id
    # empty memory: the cores' share; a refusal is shown on the form, which keeps the choice of CPU cores
    second = cu.get(book(cu, resource="cpu", cpu_cores=8)).text
    assert "8 EPYC-9554 cores, 64 GiB" in second and "<code>8-15</code>" in second
    text = book(cu, expect=409, resource="cpu", cpu_cores=64, end="2026-12-01T00:00")
    assert "Cannot be placed" in text and '<option value="cpu" selected>' in text
    text = book(cu, expect=422, resource="tpu")
    assert "choose GPUs or CPU cores" in text
