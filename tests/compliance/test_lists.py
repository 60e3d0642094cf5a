from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpulease.compliance.lists import bundled_dataset, detect_format, load_file, load_files
from gpulease.compliance.model import ListDataset, ListEntry, ListFormatError

DATA = Path(__file__).resolve().parents[2] / "src" / "gpulease" / "data" / "lists"


def test_bundled_counts_per_list() -> None:
    counts = bundled_dataset().counts
    # 7,379 OFAC rows + 28 SDN rows of the CSL sample; 1,003 UN records; 581 DPL + 8 CSL DPL rows.
    assert counts["SDN"] == 7379 + 28
    assert counts["UN"] == 1003
    assert counts["DPL"] == 581 + 8
    assert counts["EL"] == 22 + 15
    assert counts["CMIC"] == 1
    assert len(bundled_dataset().version) == 16


def test_ofac_entry_with_alias_and_addresses() -> None:
    dataset = load_file(DATA / "ofac-sdn-2024" / "sdn.csv")
    assert dataset.counts == {"SDN": 7379}
    bnc = next(e for e in dataset.entries if e.id == "SDN-306")
    assert bnc.name == "BANCO NACIONAL DE CUBA"
    assert "NATIONAL BANK OF CUBA" in bnc.aliases
    assert bnc.programs == ("CUBA",)
    assert bnc.addresses[0].street == "Zweierstrasse 35"
    assert bnc.addresses[0].country == "CH"
    assert "CH" in bnc.countries


def test_ofac_remarks_continue_from_comments_and_yield_websites() -> None:
    dataset = load_file(DATA / "ofac-sdn-2024" / "sdn.csv")
    with_sites = [e for e in dataset.entries if e.websites]
    assert len(with_sites) > 100
    assert all("." in site for e in with_sites for site in e.websites)
    individual = next(e for e in dataset.entries if e.id == "SDN-26235")
    assert individual.type == "individual"


def test_ofac_four_files_given_explicitly_equal_auto_detected() -> None:
    folder = DATA / "ofac-sdn-2024"
    explicit = load_files([folder / n for n in ("sdn.csv", "add.csv", "alt.csv", "sdn_comments.csv")])
    detected = load_file(folder / "sdn.csv")
    assert explicit.entries == detected.entries
    assert explicit.version == detected.version


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


def test_csl_csv_and_supplement() -> None:
    dataset = load_file(DATA / "entity-list-supplement" / "entity_list_supplement.csv")
    assert dataset.counts == {"CMIC": 1, "EL": 15}
    iflytek = next(e for e in dataset.entries if e.name == "IFLYTEK")
    assert iflytek.id == "EL-supplement-001"
    assert "科大讯飞股份有限公司" in iflytek.aliases
    assert iflytek.addresses[0].city == "Hefei"
    assert iflytek.countries == ("CN",)
    sample = load_file(DATA / "csl-sample" / "consolidated_sample.csv")
    assert len(sample.entries) == 115
    assert all(e.id.startswith("CSL-") for e in sample.entries)


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
    assert first.addresses[0].city == "SEAGOVILLE"
    assert first.id.startswith("DPL-")
    assert len({e.id for e in dataset.entries}) == 581


def test_formats_detected() -> None:
    assert detect_format(DATA / "dpl.txt") == "dpl"
    assert detect_format(DATA / "un" / "UN_consolidated.xml") == "un-xml"
    assert detect_format(DATA / "csl-sample" / "consolidated_sample.csv") == "csl-csv"
    assert detect_format(DATA / "ofac-sdn-2024" / "sdn.csv") == "ofac"


def test_progress_reported() -> None:
    calls: list[tuple[int, int | None]] = []
    load_file(DATA / "ofac-sdn-2024" / "sdn.csv", progress=lambda done, total: calls.append((done, total)))
    assert calls
    assert calls[-1][0] == calls[-1][1]


def test_dataset_round_trips_through_json() -> None:
    dataset = load_file(DATA / "entity-list-supplement" / "entity_list_supplement.csv")
    again = ListDataset.from_dict(json.loads(json.dumps(dataset.to_dict())))
    assert again == dataset
    entry = dataset.entries[0]
    assert ListEntry.from_dict(entry.to_dict()) == entry


def _error(path: Path) -> ListFormatError:
    with pytest.raises(ListFormatError) as caught:
        load_file(path)
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
