"""What a page asks the browser to put in its address (app_shared.links.address_ui), read from the component's
data as AppTest receives it: the query parameters a reload or a copied link would carry."""

import json
from urllib.parse import parse_qsl

from app_shared.links import ADDRESS_KEY


def address(at):
    """{name: value} of the address the last run of the app in AppTest asked for."""
    components = [c for c in at.get("bidi_component") if c.proto.id.endswith(ADDRESS_KEY)]
    assert len(components) == 1, f"expected one address per run, found {len(components)}"
    return dict(parse_qsl(json.loads(components[0].proto.json)["query"], keep_blank_values=True))
