"""Schema-driven fuzzing (schemathesis) of the OpenAI-compatible operations: no 5xx, ever.

test_schema_fuzz runs every operation within its time budget; this gives the OpenAI routes a
budget of their own, so that multipart transcriptions and chat parameters get their examples.
"""
from __future__ import annotations

import pytest

from tests.api.test_schema_fuzz import run_schemathesis

pytestmark = pytest.mark.integration
OPENAI_PATHS = r"^/v1/(audio/.*|chat/completions|models)$"


def test_fuzzing_the_openai_operations_finds_no_server_error(daemon, pytestconfig):
    run_schemathesis(daemon, "--include-path-regex", OPENAI_PATHS, long=pytestconfig.getoption("--long"))
