"""Individuals (issue 9, item 5), through the API: KYC takes a date of birth and nationality for individual owners
and officers, and the screening uses them. An exact name match on a listed individual with no agreeing
identifier is a review (possibly a namesake), not a denial; agreeing identifiers deny."""

from __future__ import annotations

from typing import Any

from tests.conftest import Facility

LISTED = "Mahfouz Ould AL-WALID"  # SDN-6903: born 01 Jan 1975, Mauritanian


def _owner_hit(f: Facility, customer_id: int, role: str) -> dict[str, Any]:
    sc = f.c.get(f"/api/v1/customers/{customer_id}/screening", headers=f.k.co).json()
    [names] = [n for n in sc["name_hits"] if n["role"] == role and n["name"] == LISTED]
    return dict(names)


def _customer(f: Facility, name: str, **person: Any) -> dict[str, Any]:
    return f.customer(
        name,
        owners=[{"name": "Corvid Holdings LLC", "percent": 90}, {"name": LISTED, "percent": 10, **person}],
    )


def test_a_bare_name_match_on_a_listed_individual_is_a_review_not_a_denial(facility: Facility) -> None:
    bare = _customer(facility, "Lakeside Imaging LLC")
    assert bare["compliance_status"] == "review"
    assert _owner_hit(facility, bare["id"], "owner")["decision"] == "review"

    # a different date of birth and nationality: the namesake is ruled out (the score drops below review)
    other_person = _customer(facility, "Harbor Imaging LLC", date_of_birth="1990-06-30", nationality="FR")
    assert other_person["compliance_status"] == "cleared"
    assert other_person["owners"][1] == {
        "name": LISTED,
        "percent": 10.0,
        "date_of_birth": "1990-06-30",
        "nationality": "FR",
    }

    same_person = _customer(facility, "Delta Imaging LLC", date_of_birth="1975-01-01", nationality="MR")
    hit = _owner_hit(facility, same_person["id"], "owner")
    assert hit["decision"] == "denied", hit  # the listed individual himself owns part of it


def test_officers_are_screened_with_their_identifiers(facility: Facility) -> None:
    c = facility.customer(
        "Quarry Vision GmbH",
        country="DE",
        officers=[{"name": LISTED, "title": "director", "date_of_birth": "1975-01-01", "nationality": "MR"}],
    )
    assert c["compliance_status"] == "denied"
    assert c["officers"] == [{"name": LISTED, "title": "director", "nationality": "MR", "date_of_birth": "1975-01-01"}]
    namesake = facility.customer("Quarry Optics GmbH", country="DE", officers=[{"name": LISTED, "title": "director"}])
    assert namesake["compliance_status"] == "review"
    r = facility.c.post(
        "/api/v1/customers",
        headers=facility.k.op,
        json={"legal_name": "X GmbH", "country": "DE", "officers": [{"name": "A B", "date_of_birth": "2999-01-01"}]},
    )
    assert r.status_code == 422 and "date of birth is in the future" in r.json()["detail"]


def test_the_cli_declares_officers_and_requested_gpus(facility: Facility, live_server: str) -> None:
    import json

    from typer.testing import CliRunner

    from gpulease.cli import app

    env = {"GPULEASE_API_URL": live_server, "GPULEASE_API_KEY": facility.k.operator}
    args = ["customers", "add", "Quarry Lens GmbH", "DE", "--officer", f"{LISTED};1975-01-01;MR"]
    out = CliRunner().invoke(app, [*args, "--requested-gpus", "8", "--end-use", "x", "--json"], env=env)
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["compliance_status"] == "denied" and body["officers"][0]["date_of_birth"] == "1975-01-01"


def test_a_profile_change_keeps_and_checks_owners_identifiers(facility: Facility) -> None:
    c = facility.customer("Lynx Imaging LLC")
    me = facility.customer_key(c["id"])
    owner = {"name": "Ada Byron", "percent": 60, "date_of_birth": "1980-12-10", "nationality": "GB"}
    r = facility.c.patch(f"/api/v1/customers/{c['id']}", headers=me, json={"owners": [owner]})
    assert r.status_code == 200 and r.json()["owners"] == [{**owner, "percent": 60.0}]
    bad = {**owner, "nationality": "AAA"}
    r = facility.c.patch(f"/api/v1/customers/{c['id']}", headers=me, json={"owners": [bad]})
    assert r.status_code == 422, r.text
