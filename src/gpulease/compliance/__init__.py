"""The screening engine: lists, normalisation, matching, ownership, red flags, decisions (pure)."""

from gpulease.compliance.compute import crossed_thresholds, cumulative_operations, training_operations
from gpulease.compliance.decide import Decision, Ruling, Thresholds, decide_name, rule_for
from gpulease.compliance.index import ScreeningIndex, bundled_index
from gpulease.compliance.lists import build_dataset, bundled_dataset, load_file, load_files, load_sources
from gpulease.compliance.match import Feature, Hit
from gpulease.compliance.model import (
    Address,
    EnrichmentAlias,
    Identifier,
    ListDataset,
    ListEntry,
    ListFormatError,
    ListSource,
)
from gpulease.compliance.normalize import NormalizedName, normalize_name
from gpulease.compliance.ownership import OwnershipPath, OwnershipResult, listed_share
from gpulease.compliance.redflags import KycProfile, RedFlag, RedFlagRules, evaluate
from gpulease.compliance.restrictions import Restriction, restriction
from gpulease.compliance.screening import (
    CustomerScreening,
    NameScreening,
    ScreenedHit,
    ScreeningResult,
    screen_customer,
    screen_name,
    screen_rows,
)

__all__ = [
    "Address",
    "CustomerScreening",
    "Decision",
    "EnrichmentAlias",
    "Feature",
    "Hit",
    "Identifier",
    "KycProfile",
    "ListDataset",
    "ListEntry",
    "ListFormatError",
    "ListSource",
    "NameScreening",
    "NormalizedName",
    "OwnershipPath",
    "OwnershipResult",
    "RedFlag",
    "RedFlagRules",
    "Restriction",
    "Ruling",
    "ScreenedHit",
    "ScreeningIndex",
    "ScreeningResult",
    "Thresholds",
    "build_dataset",
    "bundled_dataset",
    "bundled_index",
    "crossed_thresholds",
    "cumulative_operations",
    "decide_name",
    "evaluate",
    "listed_share",
    "load_file",
    "load_files",
    "load_sources",
    "normalize_name",
    "restriction",
    "rule_for",
    "screen_customer",
    "screen_name",
    "screen_rows",
    "training_operations",
]
