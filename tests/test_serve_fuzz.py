"""Schemathesis against the served OpenAPI schema: valid and invalid bodies never give a 5xx or hang.

Bounded: a fixed number of derandomized examples per operation on the bundled default model, with
tight document limits so each generated request is cheap to score.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from reranker_onnx import Reranker  # noqa: E402
from reranker_onnx.serve import Limits, create_app  # noqa: E402

APP = create_app([Reranker()], limits=Limits(max_documents=16, max_query_chars=512, timeout_s=120))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_answers_match_the_schema(case):
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance], timeout=120)
