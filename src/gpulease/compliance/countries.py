"""Country names as the lists publish them, mapped to ISO 3166 alpha-2 codes."""

from __future__ import annotations

import re

_NAMES: dict[str, str] = {
    "afghanistan": "AF", "albania": "AL", "algeria": "DZ", "angola": "AO", "argentina": "AR",
    "armenia": "AM", "aruba": "AW", "australia": "AU", "austria": "AT", "azerbaijan": "AZ",
    "bahamas": "BS", "bahamas, the": "BS", "the bahamas": "BS", "bahrain": "BH", "bangladesh": "BD",
    "barbados": "BB", "belarus": "BY", "belgium": "BE", "belize": "BZ", "benin": "BJ", "bermuda": "BM",
    "bolivia": "BO", "bosnia and herzegovina": "BA", "brazil": "BR", "british virgin islands": "VG",
    "virgin islands, british": "VG", "brunei": "BN", "bulgaria": "BG", "burkina faso": "BF", "burma": "MM",
    "myanmar": "MM", "cambodia": "KH", "canada": "CA", "cayman islands": "KY",
    "central african republic": "CF", "chad": "TD", "chile": "CL", "china": "CN",
    "people's republic of china": "CN", "prc": "CN",
    "china, hong kong special administrative region": "HK", "hong kong": "HK", "macau": "MO", "macao": "MO",
    "colombia": "CO", "comoros": "KM", "congo, democratic republic of the": "CD",
    "democratic republic of the congo": "CD", "congo, republic of the": "CG", "congo": "CG",
    "costa rica": "CR", "cote d ivoire": "CI", "cote d'ivoire": "CI", "croatia": "HR", "cuba": "CU",
    "cyprus": "CY", "czech republic": "CZ", "czechia": "CZ",
    "democratic people's republic of korea": "KP", "korea, north": "KP", "north korea": "KP",
    "korea, south": "KR", "south korea": "KR", "republic of korea": "KR", "denmark": "DK",
    "djibouti": "DJ", "dominica": "DM", "dominican republic": "DO", "ecuador": "EC", "egypt": "EG",
    "el salvador": "SV", "equatorial guinea": "GQ", "eritrea": "ER", "estonia": "EE", "ethiopia": "ET",
    "finland": "FI", "france": "FR", "gabon": "GA", "georgia": "GE", "germany": "DE", "ghana": "GH",
    "gibraltar": "GI", "greece": "GR", "guatemala": "GT", "guinea": "GN", "guinea-bissau": "GW",
    "guyana": "GY", "haiti": "HT", "honduras": "HN", "hungary": "HU", "india": "IN", "indonesia": "ID",
    "iran": "IR", "iran (islamic republic of)": "IR", "iraq": "IQ", "ireland": "IE", "israel": "IL",
    "italy": "IT", "jamaica": "JM", "japan": "JP", "jersey": "JE", "jordan": "JO", "kazakhstan": "KZ",
    "kenya": "KE", "kosovo": "XK", "kuwait": "KW", "kyrgyzstan": "KG", "laos": "LA", "latvia": "LV",
    "lebanon": "LB", "liberia": "LR", "libya": "LY", "liechtenstein": "LI", "lithuania": "LT",
    "luxembourg": "LU", "malaysia": "MY", "maldives": "MV", "mali": "ML", "malta": "MT",
    "man, isle of": "IM", "isle of man": "IM", "marshall islands": "MH", "mauritania": "MR",
    "mexico": "MX", "moldova": "MD", "monaco": "MC", "mongolia": "MN", "montenegro": "ME",
    "morocco": "MA", "mozambique": "MZ", "namibia": "NA", "netherlands": "NL",
    "netherlands antilles": "AN", "new zealand": "NZ", "nicaragua": "NI", "niger": "NE", "nigeria": "NG",
    "north macedonia, the republic of": "MK", "north macedonia": "MK", "norway": "NO", "oman": "OM",
    "pakistan": "PK", "palau": "PW", "palestinian": "PS", "state of palestine": "PS", "west bank": "PS",
    "panama": "PA", "paraguay": "PY", "peru": "PE", "philippines": "PH", "poland": "PL", "portugal": "PT",
    "qatar": "QA", "romania": "RO", "russia": "RU", "russian federation": "RU", "rwanda": "RW",
    "saint kitts and nevis": "KN", "saint vincent and the grenadines": "VC", "samoa": "WS",
    "san marino": "SM", "saudi arabia": "SA", "senegal": "SN", "serbia": "RS", "seychelles": "SC",
    "sierra leone": "SL", "singapore": "SG", "slovakia": "SK", "slovenia": "SI", "somalia": "SO",
    "south africa": "ZA", "south sudan": "SS", "spain": "ES", "sri lanka": "LK", "sudan": "SD",
    "sweden": "SE", "switzerland": "CH", "syria": "SY", "syrian arab republic": "SY", "taiwan": "TW",
    "tajikistan": "TJ", "tanzania": "TZ", "united republic of tanzania": "TZ", "thailand": "TH",
    "the gambia": "GM", "gambia": "GM", "trinidad and tobago": "TT", "tunisia": "TN", "turkey": "TR",
    "türkiye": "TR", "turkiye": "TR", "turkmenistan": "TM", "uganda": "UG", "ukraine": "UA",
    "united arab emirates": "AE", "uae": "AE", "united kingdom": "GB", "uk": "GB",
    "united kingdom of great britain and northern ireland": "GB", "united states": "US",
    "united states of america": "US", "usa": "US", "uruguay": "UY", "uzbekistan": "UZ", "vanuatu": "VU",
    "venezuela": "VE", "viet nam": "VN", "vietnam": "VN", "yemen": "YE", "zambia": "ZM",
    "zimbabwe": "ZW", "region: crimea": "UA", "region: gaza": "PS", "region: west bank": "PS",
}  # fmt: skip

_ISO2 = re.compile(r"^[A-Za-z]{2}$")
_ISO2_CODES = frozenset(_NAMES.values()) | {"HK", "MO", "CN", "US"}


def country_code(value: str | None) -> str | None:
    """ISO-2 code for a published country name or code; the text as published if unknown, None if empty."""
    if value is None:
        return None
    text = value.strip().strip(".")
    if not text or text in {"-0-", "na", "undetermined"}:
        return None
    if _ISO2.match(text) and text.upper() in _ISO2_CODES:
        return text.upper()
    return _NAMES.get(text.casefold(), text)
