"""CPU catalogue, node shapes (the per-GPU share), CPU pricing and CPU compute operations."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpulease.compliance.compute import cpu_flops_per_core, cpu_lease_operations, cpu_operations
from gpulease.domain.cpu import (
    CPU_CATALOGUE,
    BadNodeShape,
    CpuNodeView,
    GpuShare,
    UnknownCpuModel,
    cpu_model,
    cpu_node,
    cpuset,
    gpu_share,
)
from gpulease.domain.cpu_pricing import (
    CpuPriceEntry,
    cpu_cancellation_fee,
    make_cpu_quote,
    rate_cpu_usage,
)
from gpulease.domain.leases import Plan
from gpulease.domain.pricing import PriceBook, PriceUnit, PricingError, Quote

JAN = 1_767_225_600  # 2026-01-01T00:00:00Z
FEB = 1_769_904_000  # 2026-02-01T00:00:00Z
H = 3600


def dgx(gpus: int = 8) -> CpuNodeView:
    return CpuNodeView(7, "dgx", "c", "s", "Xeon-8480+", 2, 112, 2048, gpu_count=gpus, share=gpu_share("H100-80GB"))


def test_catalogue_peaks_follow_cores_clock_and_flop_per_cycle() -> None:
    epyc = cpu_model("epyc-9654")
    assert (epyc.cores, epyc.threads) == (96, 192)
    assert epyc.fp64_flops_per_socket == pytest.approx(96 * 3.7e9 * 16)  # 5.68 TFLOP/s
    xeon = cpu_model("Xeon-8480+")
    assert xeon.fp64_flops_per_socket == pytest.approx(56 * 3.8e9 * 32)  # 6.81 TFLOP/s
    grace = cpu_model("Grace")
    assert 2 * grace.fp64_flops_per_socket == pytest.approx(7.1e12, rel=0.01)  # NVIDIA: 7.1 TFLOP/s per Superchip
    for m in CPU_CATALOGUE.values():
        assert m.fp32_flops_per_core == 2 * m.fp64_flops_per_core
        assert m.threads in (m.cores, 2 * m.cores) and m.base_ghz <= m.boost_ghz
    with pytest.raises(UnknownCpuModel, match="known models"):
        cpu_model("Pentium-4")


def test_cpu_node_has_all_cores_and_memory_leasable() -> None:
    n = cpu_node(1, "c1", "c", "s", "EPYC-9654", 2, 1536)
    assert (n.cores, n.cores_per_socket, n.leasable_memory_gib) == (192, 96, 1536)
    assert n.leasable_cores == tuple(range(192)) and not n.is_gpu_node
    assert n.socket_of(95) == 0 and n.socket_of(96) == 1
    assert n.default_memory_gib(12) == 96  # 12/192 of 1536


def test_gpu_node_keeps_each_gpus_share_on_its_socket() -> None:
    n = dgx()
    assert n.gpu_cores(0) == tuple(range(0, 12)) and n.gpu_cores(3) == tuple(range(36, 48))
    assert n.gpu_cores(4) == tuple(range(56, 68)) and n.gpu_cores(7) == tuple(range(92, 104))
    assert len(n.reserved_cores) == 96 and n.reserved_memory_gib == 1536
    assert n.leasable_cores == (*range(48, 56), *range(104, 112))
    assert n.leasable_memory_gib == 512
    assert n.default_memory_gib(16) == 512
    with pytest.raises(ValueError):
        n.gpu_cores(8)


def test_bad_node_shapes_are_refused() -> None:
    with pytest.raises(BadNodeShape, match="split evenly"):
        CpuNodeView(1, "x", "c", "s", "Grace", 2, 71, 100)
    with pytest.raises(BadNodeShape, match="fit the sockets"):
        CpuNodeView(1, "x", "c", "s", "Grace", 1, 72, 500, gpu_count=4, share=GpuShare(20, 10))
    with pytest.raises(BadNodeShape, match="GiB exceed"):
        CpuNodeView(1, "x", "c", "s", "Grace", 1, 72, 100, gpu_count=4, share=GpuShare(8, 30))
    with pytest.raises(BadNodeShape):
        CpuNodeView(1, "x", "c", "s", "Grace", 9, 72, 100)


def test_cpuset_list_format() -> None:
    assert cpuset([3, 0, 1, 2, 8, 10, 11]) == "0-3,8,10-11"
    assert cpuset([5]) == "5" and cpuset([]) == ""


def test_cpu_quote_per_core_hour_with_memory_rate() -> None:
    entry = CpuPriceEntry("EPYC-9654", Plan.ON_DEMAND, Decimal("0.045"), Decimal("0.005"))
    q = make_cpu_quote(entry, 16, 128, JAN, JAN + 10 * H)
    assert q.unit is PriceUnit.CORE_HOUR
    assert q.estimated_total == Decimal("13.60")  # (16 x 0.045 + 128 x 0.005) x 10 h = (0.72 + 0.64) x 10
    assert Quote.from_dict(q.to_dict()) == q
    assert make_cpu_quote(entry, 16, 128, JAN, None).estimated_total is None


def test_cpu_quote_follows_the_plan_rules_and_month_split() -> None:
    reserved = CpuPriceEntry("Grace", Plan.RESERVED, Decimal("0.03"))
    with pytest.raises(PricingError, match="needs an end"):
        make_cpu_quote(reserved, 4, 8, JAN, None)
    with pytest.raises(PricingError, match="at least one core"):
        make_cpu_quote(reserved, 0, 8, JAN, JAN + H)
    q = make_cpu_quote(reserved, 10, 0, FEB - 5 * H, FEB + 5 * H)
    slices = rate_cpu_usage(q, q.start, FEB + 5 * H)
    assert [s.period for s in slices] == ["2026-01", "2026-02"]
    assert sum(s.amount for s in slices) == q.estimated_total == Decimal("3.00")
    assert {s.kind for s in slices} == {"reservation"}
    # cancelling inside the free period costs nothing, after it half the window
    assert cpu_cancellation_fee(q, q.start - 25 * H) == Decimal("0.00")
    assert cpu_cancellation_fee(q, q.start - H) == Decimal("1.50")


def test_long_term_is_per_core_month() -> None:
    entry = CpuPriceEntry("Xeon-8380", Plan.LONG_TERM, Decimal("20"))
    q = make_cpu_quote(entry, 4, 0, JAN, FEB)
    assert q.unit is PriceUnit.CORE_MONTH and q.estimated_total == Decimal("80.00")


def test_cpu_price_book() -> None:
    book = PriceBook()
    book.set(CpuPriceEntry("Grace", Plan.ON_DEMAND, Decimal("0.02")))
    assert book.entry("Grace", Plan.ON_DEMAND).rate == Decimal("0.02")
    with pytest.raises(PricingError, match="no reserved price"):
        book.entry("Grace", Plan.RESERVED)


@given(
    cores=st.integers(1, 256),
    gib=st.integers(0, 4096),
    start=st.integers(JAN, JAN + 90 * 86400),
    length=st.integers(1, 80 * 86400),
)
def test_a_window_used_in_full_costs_its_quote(cores: int, gib: int, start: int, length: int) -> None:
    entry = CpuPriceEntry("EPYC-7763", Plan.RESERVED, Decimal("0.037"), Decimal("0.0041"))
    q = make_cpu_quote(entry, cores, gib, start, start + length)
    assert sum(s.amount for s in rate_cpu_usage(q, start, start + length)) == q.estimated_total


def test_cpu_operations_count_cores_seconds_and_per_core_peak() -> None:
    per_core = cpu_flops_per_core("EPYC-9654")
    assert per_core == pytest.approx(3.7e9 * 32)
    assert cpu_lease_operations(192, 3600, per_core) == pytest.approx(192 * 3600 * 3.7e9 * 32)
    assert cpu_operations(10.0, 2.0) == 20.0
    with pytest.raises(ValueError):
        cpu_operations(-1, 1)
    with pytest.raises(ValueError):
        cpu_lease_operations(-1, 1, 1)
