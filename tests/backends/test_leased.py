"""What a lease owns on a node: GPU indices and/or pinned cores, as every backend receives them."""

from __future__ import annotations

import pytest

from gpulease.backends import LeasedGpus


def test_gpu_lease_with_its_share_of_cores() -> None:
    part = LeasedGpus(1, "n1", (2, 3), cores=(8, 9, 10, 11, 16))
    assert part.visible_devices == "2,3"
    assert part.cpuset == "8-11,16"


def test_cpu_lease_has_cores_and_no_gpus() -> None:
    part = LeasedGpus(2, "c1", (), cores=(0, 1))
    assert part.visible_devices == ""  # CUDA_VISIBLE_DEVICES="" hides every GPU from a CPU lease's runs
    assert part.cpuset == "0-1"


def test_gpu_lease_on_a_node_without_cpu_description_has_no_cpuset() -> None:
    assert LeasedGpus(3, "n1", (0,)).cpuset == ""


@pytest.mark.parametrize(
    ("indices", "cores", "message"),
    [
        ((), (), "no GPU indices and no cores"),
        ((0, 0), (), "bad GPU indices"),
        ((0,), (1, 1), "bad cores"),
        ((), (-1,), "bad cores"),
    ],
)
def test_bad_parts_are_refused(indices: tuple[int, ...], cores: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LeasedGpus(4, "n1", indices, cores=cores)
