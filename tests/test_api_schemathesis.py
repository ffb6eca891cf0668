"""Schemathesis over the OpenAPI document, in-process against the ASGI app on a
real store: no 5xx, every status code, content type, header and body as
documented, with a read token (and admin for the POST routes)."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from schemathesis.specs.openapi.checks import positive_data_acceptance

from helpers.api_site import TOKENS, loaded_site


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    from mieruka.api.app import create_app
    cfg, store, _ = loaded_site(tmp_path_factory.mktemp("schema"), days=10)
    app = create_app(cfg, store, env={})
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    store.close()


@pytest.mark.slow
def test_api_conforms_to_its_schema(api_schema):
    ops = [r.ok() for r in api_schema.get_all_operations()]
    assert len(ops) >= 15
    for op in ops:
        role = "admin" if op.method.upper() == "POST" else "read"
        n = 3 if op.path.endswith(".html") else 12      # a report draws a dozen charts: ~1 s each

        @given(case=op.as_strategy())
        @settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            # positive_data_acceptance is left out on purpose: a schema-valid request may still be
            # refused with a documented 422 for what a schema cannot say (an end before its start,
            # a cursor this API never gave out, a text that is not ISO 8601)
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKENS[role]}"},
                                   excluded_checks=[positive_data_acceptance])

        check()
