"""UN Security Council consolidated sanctions list (XML: INDIVIDUALS / ENTITIES)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, cast

from gpulease.compliance.countries import country_code
from gpulease.compliance.lists.source import PathLike, Progress, SourceFile, clean
from gpulease.compliance.model import Address, Identifier, ListEntry, ListFormatError

LIST_NAME = "UN Security Council Consolidated List"
SOURCE_URL = "https://main.un.org/securitycouncil/en/content/un-sc-consolidated-list"
_NAME_PARTS = ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")


def _text(element: ET.Element, tag: str) -> str | None:
    child = element.find(tag)
    return clean(child.text) if child is not None else None


def _entry(element: ET.Element, path: str, line: int) -> ListEntry:
    kind = "individual" if element.tag == "INDIVIDUAL" else "entity"
    reference = _text(element, "REFERENCE_NUMBER") or _text(element, "DATAID")
    if reference is None:
        raise ListFormatError(path, line, f"an {element.tag} has neither REFERENCE_NUMBER nor DATAID.")
    name = " ".join(p for p in (_text(element, t) for t in _NAME_PARTS) if p)
    if not name:
        raise ListFormatError(path, line, f"{element.tag} {reference} has no FIRST_NAME.")
    aliases: list[str] = []
    for alias in element.iter(f"{element.tag}_ALIAS"):
        # The UN joins several spellings of one alias with ";" in one field.
        for alias_name in (_text(alias, "ALIAS_NAME") or "").split(";"):
            alias_name = alias_name.strip()
            if alias_name and alias_name != name:
                aliases.append(alias_name)
    original = _text(element, "NAME_ORIGINAL_SCRIPT")
    if original:
        aliases.append(original)
    addresses: list[Address] = []
    for node in element.iter(f"{element.tag}_ADDRESS"):
        address = Address(
            street=_text(node, "STREET"),
            city=_text(node, "CITY"),
            state=_text(node, "STATE_PROVINCE"),
            postal_code=_text(node, "ZIP_CODE"),
            country=country_code(_text(node, "COUNTRY")),
        )
        if not address.is_empty():
            addresses.append(address)
    countries = [a.country for a in addresses if a.country]
    nationalities: list[str] = []
    nationality = element.find("NATIONALITY")
    if nationality is not None:
        nationalities.extend(c for c in (country_code(v.text) for v in nationality.iter("VALUE")) if c)
    countries.extend(nationalities)
    identifiers: list[Identifier] = []
    for node in element.iter("INDIVIDUAL_DOCUMENT"):
        number = _text(node, "NUMBER")
        if number:
            document = _text(node, "TYPE_OF_DOCUMENT") or "document"
            country = _text(node, "ISSUING_COUNTRY")
            identifiers.append(Identifier(document, number, country_code(country) if country else None))
    program = _text(element, "UN_LIST_TYPE")
    return ListEntry(
        id=f"UN-{reference}",
        list="UN",
        list_name=LIST_NAME,
        type=kind,
        name=name,
        aliases=tuple(dict.fromkeys(aliases)),
        addresses=tuple(addresses),
        countries=tuple(dict.fromkeys(countries)),
        programs=(program,) if program else (),
        start_date=_text(element, "LISTED_ON"),
        source_url=SOURCE_URL,
        remarks=_text(element, "COMMENTS1"),
        dates_of_birth=tuple(d for d in (_birth_date(n) for n in element.iter("INDIVIDUAL_DATE_OF_BIRTH")) if d),
        nationalities=tuple(dict.fromkeys(nationalities)),
        identifiers=tuple(identifiers),
    )


def _birth_date(node: ET.Element) -> str | None:
    """A UN date of birth in the words OFAC uses: "1978-04-28", "1971", "1973 to 1974", "circa 1960"."""
    exact = _text(node, "DATE")
    if exact:
        return exact
    start, end = _text(node, "FROM_YEAR"), _text(node, "TO_YEAR")
    if start and end:
        return f"{start} to {end}"
    year = _text(node, "YEAR")
    if year:
        return f"circa {year}" if _text(node, "TYPE_OF_DATE") == "APPROXIMATELY" else year
    return None


def load_un_xml(path: PathLike, progress: Progress | None = None) -> tuple[list[ListEntry], SourceFile]:
    """Load the UN consolidated list, record by record (the parser is fed line by line)."""
    source = SourceFile(path, progress)
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    entries: list[ListEntry] = []
    depth_root: str | None = None
    line = 0
    try:
        for line, text in enumerate(source.lines(), start=1):
            parser.feed(text)
            for item in parser.read_events():
                event, element = cast("tuple[str, Any]", item)
                if not isinstance(element, ET.Element):
                    continue
                if event == "start":
                    if depth_root is None:
                        depth_root = element.tag
                        if depth_root != "CONSOLIDATED_LIST":
                            raise ListFormatError(
                                source.path,
                                line,
                                f"the root element is <{depth_root}>, expected <CONSOLIDATED_LIST> "
                                "(is this the UN consolidated list XML?).",
                            )
                    continue
                if element.tag in ("INDIVIDUAL", "ENTITY"):
                    entries.append(_entry(element, source.path, line))
                    element.clear()
        parser.close()
    except ET.ParseError as exc:
        raise ListFormatError(source.path, exc.position[0] or line, f"not well-formed XML ({exc}).") from exc
    if depth_root is None:
        raise ListFormatError(source.path, 1, "the file is empty or not XML.")
    return entries, source
