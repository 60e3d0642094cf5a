from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gpulease.compliance.lists import bundled_dataset, detect_format, load_file, load_files, load_sources
from gpulease.compliance.model import ListEntry, ListFormatError

DATA = Path(__file__).resolve().parents[2] / "src" / "gpulease" / "data" / "lists"


SDN_SET = DATA / "ofac-sdn-2023-12"
CONS_SET = DATA / "ofac-cons-2025"
SHARED = Path("/work/shared/data")


def test_bundled_counts_per_list() -> None:
    counts = bundled_dataset().counts
    # 13,821 OFAC SDN rows + 28 SDN rows of the CSL sample; 1,003 UN records; 581 DPL + 8 CSL DPL rows.
    assert counts["SDN"] == 13821 + 28
    assert counts["UN"] == 1003
    assert counts["DPL"] == 581 + 8
    assert counts["EL"] == 22 + 49
    assert counts["CMIC"] == 68 + 1  # OFAC's non-SDN CMIC list and the supplement's SenseTime Group
    assert counts["SSI"] == 286 + 26
    assert len(bundled_dataset().version) == 16


def test_bundled_sources_carry_publication_dates() -> None:
    published = {s.key: s.published for s in bundled_dataset().sources}
    assert published["ofac"] is not None and published["ofac"].date == "2023-12-28"
    assert published["un"] is not None and published["un"].date == "2026-02-27"
    assert all(p is not None and p.basis for p in published.values())


def test_ofac_entry_with_alias_addresses_and_identifiers() -> None:
    dataset = load_file(SDN_SET / "sdn.csv")
    assert dataset.counts == {"SDN": 13821}
    bnc = next(e for e in dataset.entries if e.id == "SDN-306")
    assert bnc.name == "BANCO NACIONAL DE CUBA"
    assert "NATIONAL BANK OF CUBA" in bnc.aliases
    assert bnc.programs == ("CUBA",)
    assert any(a.street == "Zweierstrasse 35" and a.country == "CH" for a in bnc.addresses)
    ivanov = next(e for e in dataset.entries if e.id == "SDN-39758")
    assert ivanov.type == "individual"
    assert ivanov.dates_of_birth == ("14 Jun 1960",)
    assert ivanov.nationalities == ("RU",)
    assert any(i.kind == "Tax ID No." and i.value == "771873416848" and i.country == "RU" for i in ivanov.identifiers)


def test_ofac_remarks_continue_from_comments_without_a_space() -> None:
    dataset = load_file(SDN_SET / "sdn.csv")
    with_sites = [e for e in dataset.entries if e.websites]
    assert len(with_sites) > 100
    # sdn_comments.csv continues a remark cut mid-word: "... Listing Date (EO 14024 Directive 3)" + ": 24 Feb 2022"
    continued = [e for e in dataset.entries if e.remarks and "Directive 3): 24 Feb 2022" in e.remarks]
    assert continued


def test_ofac_detail_rows_without_their_entry_are_reported() -> None:
    (source,) = load_sources([SDN_SET / "sdn.csv"])
    (gap,) = source.missing_entry_rows
    assert gap.file == "sdn_comments.csv" and gap.kind == "remarks" and gap.rows == 3
    assert gap.entry_numbers == ("12300", "15599", "15600")
    assert "not one publication" in gap.describe()
    assert source.summary()["missing_entry_rows"][0]["rows"] == 3


def test_mixed_publications_report_every_orphan(tmp_path: Path) -> None:
    # The old bundled mistake: an sdn.csv of one publication with alias/address files of a later one.
    for name in ("add.csv", "alt.csv", "sdn_comments.csv"):
        shutil.copy(SDN_SET / name, tmp_path / name)
    lines = (SDN_SET / "sdn.csv").read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    (tmp_path / "sdn.csv").write_text("".join(lines[:5000]), encoding="utf-8")
    (source,) = load_sources([tmp_path / "sdn.csv"])
    kinds = {g.kind: g for g in source.missing_entry_rows}
    assert set(kinds) == {"address", "alias", "remarks"}
    assert kinds["address"].rows > 1000 and kinds["alias"].rows > 1000


def test_partial_ofac_set_is_refused_unless_allowed(tmp_path: Path) -> None:
    shutil.copy(SDN_SET / "sdn.csv", tmp_path / "sdn.csv")
    with pytest.raises(ListFormatError) as caught:
        load_sources([tmp_path / "sdn.csv"])
    assert "add.csv, alt.csv, sdn_comments.csv not found" in caught.value.reason
    assert "aliases" in caught.value.reason
    (source,) = load_sources([tmp_path / "sdn.csv"], allow_partial=True)
    assert len(source.entries) == 13821 and all(not e.aliases for e in source.entries)


def test_ofac_detail_file_alone_is_refused() -> None:
    with pytest.raises(ListFormatError) as caught:
        load_sources([SDN_SET / "alt.csv"])
    assert "load it together with sdn.csv" in caught.value.reason


def test_ofac_four_files_given_explicitly_equal_auto_detected() -> None:
    explicit = load_files([SDN_SET / n for n in ("sdn.csv", "add.csv", "alt.csv", "sdn_comments.csv")])
    detected = load_file(SDN_SET / "sdn.csv")
    assert explicit.entries == detected.entries
    assert explicit.version == detected.version


def test_ofac_non_sdn_list_keeps_each_programme() -> None:
    dataset = load_file(CONS_SET / "cons_prim.csv")
    assert dataset.counts == {"CAP": 1, "CMIC": 68, "NS-MBS": 9, "PLC": 78, "SSI": 286}
    by_id = {e.id: e for e in dataset.entries}
    telecom = by_id["CMIC-30882"]
    assert telecom.list_name.startswith("Non-SDN Chinese Military-Industrial Complex")
    assert "China Telecom Corp Ltd" in telecom.aliases  # the remarks' issuer names are its names too
    assert any(i.kind == "ISIN" and i.value == "US1694261033" for i in telecom.identifiers)
    vtb = by_id["SSI-17013"]
    assert vtb.programs == ("UKRAINE-EO13662", "RUSSIA-EO14024")
    assert vtb.list_name.startswith("Sectoral Sanctions Identifications")


def test_un_entry() -> None:
    dataset = load_file(DATA / "un" / "UN_consolidated.xml")
    entry = next(e for e in dataset.entries if e.id == "UN-CDe.001")
    assert entry.name == "ADF"
    assert entry.type == "entity"
    assert "Allied Democratic Forces" in entry.aliases
    assert entry.countries == ("CD",)
    person = next(e for e in dataset.entries if e.id == "UN-CDi.001")
    assert person.name == "ERIC BADEGE"
    assert person.type == "individual"
    assert person.start_date == "2012-12-31"
    assert {"RW", "CD"} <= set(person.countries)
    assert person.dates_of_birth == ("1971",)


def test_un_aliases_joined_by_semicolon_are_split() -> None:
    dataset = load_file(DATA / "un" / "UN_consolidated.xml")
    aliases = {a for e in dataset.entries for a in e.aliases}
    assert {"Azim Adhajani", "Azim Agha-Jani"} <= aliases
    assert not any(";" in a for a in aliases)


def test_csl_csv_and_supplement_keep_what_the_listing_means() -> None:
    dataset = load_file(DATA / "entity-list-supplement" / "entity_list_supplement_v2.csv")
    assert dataset.counts == {"CMIC": 1, "EL": 49}
    iflytek = next(e for e in dataset.entries if e.name == "IFLYTEK")
    assert iflytek.id == "EL-supplement-001"
    assert "科大讯飞股份有限公司" in iflytek.aliases
    assert iflytek.addresses[0].city == "Hefei"
    assert iflytek.countries == ("CN",)
    assert iflytek.federal_register == "84 FR 54002"
    assert iflytek.listing_date == "2019-10-09"
    assert iflytek.license_requirement == "For all items subject to the EAR."
    assert iflytek.license_policy is not None and "presumption of denial" in iflytek.license_policy
    assert iflytek.source_url is not None and "bis.doc.gov" in iflytek.source_url
    sample = load_file(DATA / "csl-sample" / "consolidated_sample.csv")
    assert len(sample.entries) == 115
    assert all(e.id.startswith("CSL-") for e in sample.entries)
    with_ids = next(e for e in sample.entries if e.name == "200G PSA HOLDINGS LLC")
    assert with_ids.identifiers[0].value == "80-0890696" and with_ids.identifiers[0].country == "US"


def test_csl_json_same_as_csv(tmp_path: Path) -> None:
    record = {
        "source": "Entity List (EL) - Bureau of Industry and Security",
        "name": "Example Semiconductor Co., Ltd.",
        "type": "Entity",
        "alt_names": ["Example Semi", "示例半导体有限公司"],
        "addresses": [
            {
                "address": "1 Road",
                "city": "Shenzhen",
                "state": "Guangdong",
                "postal_code": "",
                "country": "CN",
            }
        ],
        "programs": [],
        "start_date": "2024-01-01",
    }
    path = tmp_path / "consolidated.json"
    path.write_text(json.dumps({"results": [record]}), encoding="utf-8")
    dataset = load_file(path)
    (entry,) = dataset.entries
    assert entry.list == "EL"
    assert entry.aliases == ("Example Semi", "示例半导体有限公司")
    assert entry.addresses[0].city == "Shenzhen"
    assert entry.countries == ("CN",)


def test_dpl() -> None:
    dataset = load_file(DATA / "dpl.txt")
    assert dataset.counts == {"DPL": 581}
    first = dataset.entries[0]
    assert first.name == "I. ASH"
    assert first.type == "individual" and first.listing_date == "2003-06-19"
    assert first.federal_register is not None and first.federal_register.startswith("68 F.R. 38290")
    assert first.addresses[0].city == "SEAGOVILLE"
    assert first.id.startswith("DPL-")
    assert len({e.id for e in dataset.entries}) == 581


def test_formats_detected() -> None:
    assert detect_format(DATA / "dpl.txt") == "dpl"
    assert detect_format(DATA / "un" / "UN_consolidated.xml") == "un-xml"
    assert detect_format(DATA / "csl-sample" / "consolidated_sample.csv") == "csl-csv"
    assert detect_format(SDN_SET / "sdn.csv") == "ofac"
    assert detect_format(CONS_SET / "cons_prim.csv") == "ofac"


def test_progress_reported() -> None:
    calls: list[tuple[int, int | None]] = []
    load_file(SDN_SET / "sdn.csv", progress=lambda done, total: calls.append((done, total)))
    assert calls
    assert calls[-1][0] == calls[-1][1]


def test_entries_round_trip_through_json() -> None:
    # The store keeps entries as JSON: every field a hit explains must survive the trip.
    for entry in bundled_dataset().entries:
        assert ListEntry.from_dict(json.loads(json.dumps(entry.to_dict()))) == entry


def _error(path: Path) -> ListFormatError:
    with pytest.raises(ListFormatError) as caught:
        load_file(path, allow_partial=True)
    return caught.value


def test_malformed_ofac_wrong_column_count(tmp_path: Path) -> None:
    path = tmp_path / "sdn.csv"
    path.write_text(
        '36,"AEROCARIBBEAN AIRLINES",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n37,"BROKEN",-0- ,"CUBA"\n',
        encoding="utf-8",
    )
    error = _error(path)
    assert error.line == 2
    assert "expected 12" in error.reason and "found 4" in error.reason


def test_malformed_ofac_missing_name(tmp_path: Path) -> None:
    path = tmp_path / "sdn.csv"
    path.write_text('36,-0- ,-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n', encoding="utf-8")
    error = _error(path)
    assert error.line == 1
    assert "no name" in error.reason


def test_malformed_csl_row(tmp_path: Path) -> None:
    source = (DATA / "csl-sample" / "consolidated_sample.csv").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "consolidated.csv"
    path.write_text(
        "\n".join([*source[:4], "Entity List (EL) - Bureau of Industry and Security,x,y"]) + "\n",
        encoding="utf-8",
    )
    error = _error(path)
    assert error.line == 5
    assert "columns" in error.reason


def test_csl_missing_name(tmp_path: Path) -> None:
    source = (DATA / "csl-sample" / "consolidated_sample.csv").read_text(encoding="utf-8").splitlines()
    header = source[0]
    blank = "Entity List (EL) - Bureau of Industry and Security" + "," * (header.count(","))
    path = tmp_path / "consolidated.csv"
    path.write_text(header + "\n" + blank + "\n", encoding="utf-8")
    error = _error(path)
    assert error.line == 2
    assert "no name" in error.reason


def test_not_xml(tmp_path: Path) -> None:
    path = tmp_path / "un.xml"
    path.write_text("<CONSOLIDATED_LIST>\n<INDIVIDUALS>\n<INDIVIDUAL>\n</ENTITY>\n", encoding="utf-8")
    error = _error(path)
    assert error.line == 4
    assert "XML" in error.reason


def test_wrong_xml_root(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text('<?xml version="1.0"?>\n<rss></rss>\n', encoding="utf-8")
    assert "CONSOLIDATED_LIST" in _error(path).reason


def test_bad_json_line(tmp_path: Path) -> None:
    path = tmp_path / "consolidated.json"
    path.write_text('{"results": [\n{"source": "x",\n "name": }\n]}', encoding="utf-8")
    error = _error(path)
    assert error.line == 3


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello world\n", encoding="utf-8")
    assert "unknown list format" in _error(path).reason


def test_dpl_wrong_columns(tmp_path: Path) -> None:
    lines = (DATA / "dpl.txt").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "dpl.txt"
    path.write_text("\n".join([*lines[:3], '"ONLY NAME"\t"street"']) + "\n", encoding="utf-8")
    error = _error(path)
    assert error.line == 4
    assert "tab-separated" in error.reason
