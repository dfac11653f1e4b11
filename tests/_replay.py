"""An offline HTTP adapter for the ODK Central tests: recorded answers, no network."""

from __future__ import annotations

import json

import requests


class ReplayAdapter(requests.adapters.HTTPAdapter):
    """Answers every request from recorded bodies; nothing leaves the machine.

    ``routes`` maps a URL fragment to the JSON body to answer with; a request that
    matches no fragment gets a 404. ``seen`` records (method, url) of every request.
    """

    def __init__(self, routes):
        super().__init__()
        self.routes, self.seen = routes, []

    def send(self, request, **kwargs):
        self.seen.append((request.method, request.url))
        body = next((b for frag, b in self.routes.items() if frag in request.url), None)
        resp = requests.Response()
        resp.status_code = 200 if body is not None else 404
        resp._content = json.dumps(body or {"message": "not recorded"}).encode()
        resp.headers["Content-Type"] = "application/json"
        resp.url, resp.request = request.url, request
        return resp
