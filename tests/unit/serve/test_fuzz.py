"""Property-based fuzzing of the whole OpenAPI schema with schemathesis, against a live
gateway on the fake engine, with every role's key: no 5xx, every error an OpenAI-style
JSON error object, every response body as the schema says.

LORALOOP_FUZZ_EXAMPLES sets the examples per operation and role (25 by default; a
deeper run: 200). The counts go to test-results/fuzz.json for BENCHMARKS.md.
"""

import json
import os
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from sqlmodel import Session

from loraloop import db
from loraloop.settings import Settings
from serve.auth import ROLES, create_key
from tests.utils import REPO
from tests.utils.postgres import reset_schema

EXAMPLES = int(os.environ.get("LORALOOP_FUZZ_EXAMPLES", "25"))


@schemathesis.check
def error_is_an_openai_object(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx and 5xx carries {"error": {"message": ..., "type": ...}}."""
    if response.status_code < 400:
        return None
    body = json.loads(response.content)
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"not an error object: {body!r:.300}"
    assert isinstance(error.get("message"), str) and error["message"], body
    assert isinstance(error.get("type"), str) and error["type"], body
    return True


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    error_is_an_openai_object,
]


def fuzzer(
    operation: Any,
    base: str,
    headers: dict[str, str],
    counts: dict[str, int],
    statuses: dict[int, int],
) -> Callable[[], None]:
    """A hypothesis test of one operation with one key, tallying what it saw."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        response = case.call(base_url=base, headers=headers, timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        counts[operation.label] = counts.get(operation.label, 0) + 1
        case.validate_response(response, checks=CHECKS)

    return fuzz  # type: ignore[no-any-return]


def test_the_whole_api_holds_under_fuzzing(
    pg_url: str, make_live_gateway: Callable[..., Settings]
) -> None:
    """On PostgreSQL, which (unlike SQLite) refuses values beyond a column's type."""
    db.upgrade(pg_url)
    try:
        run_fuzzing(pg_url, make_live_gateway)
    finally:
        reset_schema(pg_url)


def run_fuzzing(db_url: str, make_live_gateway: Callable[..., Settings]) -> None:
    live = make_live_gateway(db_url, require_keys=True)
    base = f"http://127.0.0.1:{live.serve.port}"
    engine = db.create_db_engine(db_url)
    with Session(engine) as session:
        keys = {role: create_key(session, role, f"fuzz {role}") for role in ROLES}
    engine.dispose()
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25, "every API operation is in the schema"

    counts: dict[str, int] = {}
    statuses: dict[int, int] = {}
    for operation in operations:
        for key in keys.values():
            fuzzer(operation, base, {"Authorization": f"Bearer {key}"}, counts, statuses)()

    cases = sum(counts.values())
    report = {
        "operations": len(operations),
        "roles": len(keys),
        "examples_per_operation_and_role": EXAMPLES,
        "cases": cases,
        "statuses": dict(sorted(statuses.items())),
    }
    out = REPO / "test-results" / "fuzz.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nfuzzing: {report}")
    assert not any(status >= 500 for status in statuses)
    assert cases >= len(operations) * len(keys), "every operation was called for every role"
