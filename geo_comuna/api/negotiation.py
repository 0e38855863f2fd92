"""When a request is a person's (a browser asking for a page) and in which language: what
decides that an OGC API route answers with its HTML page, and that an error is a page
(api/problems.py) rather than problem JSON. Kept apart from the routes of api/pages.py, which
the handlers of errors must not import."""

from __future__ import annotations

from fastapi import Request

from geo_comuna.maps.pages import page_language

#: the JSON types a route serves, against which text/html must win for a page
JSON_TYPES = ("application/json", "application/geo+json")


def _quality(header: str, media: str) -> float:
    """The q an Accept header gives ``media`` by name (not by */*): 0 when not named."""
    best = 0.0
    for part in header.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        if name.lower() != media:
            continue
        try:
            best = max(best, float(next((p[2:] for p in params if p.startswith("q=")), "1")))
        except ValueError:
            continue
    return best


def wants_html(request: Request) -> bool:
    """Does this request ask for the page? ``f=html``, or an Accept header naming text/html
    above every JSON type it names (``*/*`` alone is JSON: what curl and clients send)."""
    f = request.query_params.get("f")
    if f is not None:
        return f == "html"
    accept = request.headers.get("accept") or ""
    html = _quality(accept, "text/html")
    return html > 0 and all(html > _quality(accept, media) for media in JSON_TYPES)


def page_lang(request: Request) -> str:
    return page_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def asked_lang(request: Request) -> str:
    """The language a program asked its answer's words in: es for ``?lang=es``, else en
    (what programs read is English unless they ask)."""
    return "es" if request.query_params.get("lang") == "es" else "en"
