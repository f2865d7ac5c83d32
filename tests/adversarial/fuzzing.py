"""A deterministic, bounded schemathesis run over every operation of one OpenAPI document.

Each operation is fuzzed twice, with inputs that fit its schema (positive) and
inputs that do not (negative), by a Hypothesis test that is derandomized and
seeded: the same inputs every run. Every response goes through schemathesis'
checks (no 5xx, documented status codes, content types, headers and response
schemas; invalid input must be refused) and through :func:`error_shape`, which
holds every 4xx/5xx answer to the API's documented JSON error document.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SEED = 20261128
"""The fixed seed (derandomized too: a run tries the same inputs every time)."""
TIMEOUT = 15.0
"""Seconds allowed for one request."""
BUILT_IN_CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
)


def error_shape(
    required: Mapping[str, type], optional: Mapping[str, type] | None = None
) -> Callable[[Any, Any, Case[Any]], bool]:
    """A check: every 4xx/5xx answer is a JSON object with exactly these members.

    Args:
        required: member name to type; all must be present.
        optional: members that may also be present.
    """
    allowed = {**required, **(optional or {})}

    def check(_ctx: Any, response: Any, case: Case[Any]) -> bool:
        if response.status_code < 400:
            return True
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        try:
            body = response.json()
        except ValueError:
            raise AssertionError(
                f"{where}: error body is not JSON: {response.text[:200]!r}"
            ) from None
        if not isinstance(body, dict):
            raise AssertionError(f"{where}: error body is not an object: {body!r}")
        missing = [name for name in required if name not in body]
        extra = [name for name in body if name not in allowed]
        wrong = [
            name
            for name, kind in allowed.items()
            if name in body and not isinstance(body[name], kind)
        ]
        if missing or extra or wrong:
            raise AssertionError(
                f"{where}: error body {body!r} is not the documented shape "
                f"(missing {missing}, unexpected {extra}, wrong type {wrong})"
            )
        return True

    check.__name__ = "error_shape"
    return check


def is_positive(case: Case[Any]) -> bool:
    """Whether ``case`` was generated to fit the schema (a ``prepare`` may then make it real).

    A ``prepare`` leaves invalid cases alone: putting a real id or key into one could
    make it valid, and the server would then rightly accept it.
    """
    return case.meta is not None and case.meta.generation.mode.is_positive


def add_nul(case: Case[Any]) -> bool:
    """Put a NUL character into the first text path parameter or query value of ``case``.

    Schemathesis may generate one but seldom does in a short run; PostgreSQL cannot store
    it, so every route must refuse it as bad input. Returns whether a text was found.
    """
    for values in (case.path_parameters, case.query):
        for name, value in (values or {}).items():
            if isinstance(value, str):
                values[name] = value + "\x00"
                return True
    return False


Send = Callable[[Case[Any]], schemathesis.Response]
Prepare = Callable[[Case[Any]], None]


@dataclass
class FuzzTarget:
    """One API under test.

    Attributes:
        name: shown in the report.
        schema: the API's OpenAPI document, with the live server as base URL.
        send: makes the real request for a case (TLS, client certificate, auth).
        error_check: the API's documented error document (:func:`error_shape`).
        prepare: adjusts a generated case before it is sent (e.g. signs a body).
        skip: ``"METHOD /path"`` operations not fuzzed, each with the reason in the caller.
        finish: checks made once the run is over (e.g. that signed answers were verified).
    """

    name: str
    schema: schemathesis.BaseSchema
    send: Send
    error_check: Callable[[Any, Any, Case[Any]], bool]
    prepare: Prepare | None = None
    skip: Collection[str] = ()
    finish: Callable[[], None] | None = None


@dataclass
class FuzzReport:
    """What a run tried: inputs sent per operation and the status codes seen."""

    target: str
    inputs: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    """Operation -> seconds spent waiting for answers."""
    answers: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    """(operation, generation mode, status) -> inputs."""

    @property
    def total(self) -> int:
        """Inputs sent in all."""
        return sum(self.inputs.values())

    def summary(self) -> str:
        """One line for the test log."""
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return f"{self.target}: {self.total} inputs over {len(self.inputs)} operations ({codes})"

    def details(self) -> str:
        """Inputs per operation, with the status codes seen in each generation mode."""
        lines = []
        for label in sorted(self.inputs):
            seen = [
                f"{mode} {status}: {n}"
                for (op, mode, status), n in sorted(self.answers.items())
                if op == label
            ]
            lines.append(
                f"  {self.inputs[label]:5d}  {label}  ({', '.join(seen)}) "
                f"{self.seconds.get(label, 0.0):.1f}s"
            )
        return "\n".join(lines)


def fuzz(target: FuzzTarget, *, examples: int) -> FuzzReport:
    """Fuzz every operation of ``target`` with ``examples`` inputs per mode; raise on a failure."""
    report = FuzzReport(target.name)
    operations = [result.ok() for result in target.schema.get_all_operations()]  # type: ignore[union-attr]  # an unresolvable document fails here, loudly
    assert operations, f"{target.name}: the OpenAPI document has no operations"
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        if label in target.skip:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not _negatable(operation):
                continue
            _fuzz_operation(target, operation, mode, label, examples, report)
    if target.finish is not None:
        target.finish()
    return report


_ANNOTATIONS = frozenset({"title", "description", "examples", "example"})


def _negatable(operation: Any) -> bool:
    """Whether any input of ``operation`` can be made invalid.

    An operation with neither a body nor a constrained parameter (a path segment
    that may be any string) has no invalid input; Hypothesis would spend
    thousands of draws before giving up on it.
    """
    if list(operation.body):
        return True
    for parameter in operation.iter_parameters():
        definition = parameter.definition
        schema = definition.get("schema", {})
        if definition.get("required") and definition.get("in") != "path":
            return True  # leaving it out is invalid
        if schema.get("type") != "string" or set(schema) - {"type"} - _ANNOTATIONS:
            return True
    return False


def _fuzz_operation(
    target: FuzzTarget,
    operation: Any,
    mode: GenerationMode,
    label: str,
    examples: int,
    report: FuzzReport,
) -> None:
    @hypothesis.seed(SEED)
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case[Any]) -> None:
        if target.prepare is not None:
            target.prepare(case)
        started = time.perf_counter()
        response = target.send(case)
        report.seconds[label] += time.perf_counter() - started
        report.inputs[label] += 1
        report.statuses[response.status_code] += 1
        report.answers[(label, mode.value, response.status_code)] += 1
        case.validate_response(
            response, checks=[*BUILT_IN_CHECKS, target.error_check], headers=dict(case.headers)
        )

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # A mode with nothing to generate (no parameters to make invalid) tries no input.
        return
