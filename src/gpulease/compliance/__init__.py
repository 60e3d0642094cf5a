"""The screening engine: lists, normalisation, matching, ownership, red flags, decisions (pure)."""

from gpulease.compliance.compute import crossed_thresholds, cumulative_operations, training_operations
from gpulease.compliance.decide import Decision, Thresholds, decide_name
from gpulease.compliance.index import ScreeningIndex, bundled_index
from gpulease.compliance.lists import bundled_dataset, load_file, load_files
from gpulease.compliance.match import Hit
from gpulease.compliance.model import Address, ListDataset, ListEntry, ListFormatError
from gpulease.compliance.normalize import NormalizedName, normalize_name
from gpulease.compliance.ownership import OwnershipPath, OwnershipResult, listed_share
from gpulease.compliance.redflags import KycProfile, RedFlag, RedFlagRules, evaluate
from gpulease.compliance.screening import CustomerScreening, NameScreening, screen_customer, screen_rows

__all__ = [
    "Address",
    "CustomerScreening",
    "Decision",
    "Hit",
    "KycProfile",
    "ListDataset",
    "ListEntry",
    "ListFormatError",
    "NameScreening",
    "NormalizedName",
    "OwnershipPath",
    "OwnershipResult",
    "RedFlag",
    "RedFlagRules",
    "ScreeningIndex",
    "Thresholds",
    "bundled_dataset",
    "bundled_index",
    "crossed_thresholds",
    "cumulative_operations",
    "decide_name",
    "evaluate",
    "listed_share",
    "load_file",
    "load_files",
    "normalize_name",
    "screen_customer",
    "screen_rows",
    "training_operations",
]
