"""/api/v1/schema/, docs/ and redoc/: the OpenAPI document and its two viewers."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from tests.api.support import LIST_PARAMETERS

SCHEMA = "/api/v1/schema/"
OPERATIONS = [
    ("/api/v1/payouts/", "get"),
    ("/api/v1/payouts/", "post"),
    ("/api/v1/payouts/{payout_id}/", "get"),
    ("/api/v1/payouts/{payout_id}/", "patch"),
    ("/api/v1/payouts/{payout_id}/", "delete"),
    ("/api/v1/payouts/{payout_id}/history/", "get"),
    ("/api/v1/events/", "get"),
    # Webhooks (README, "Webhooks"; SPEC.md is silent).
    ("/api/v1/webhook_endpoints/", "get"),
    ("/api/v1/webhook_endpoints/", "post"),
    ("/api/v1/webhook_endpoints/{endpoint_id}/", "get"),
    ("/api/v1/webhook_endpoints/{endpoint_id}/", "patch"),
    ("/api/v1/webhook_endpoints/{endpoint_id}/", "delete"),
    ("/api/v1/webhook_endpoints/{endpoint_id}/rotate_secret/", "post"),
    ("/api/v1/webhook_endpoints/{endpoint_id}/deliveries/", "get"),
    ("/api/v1/webhook_deliveries/{delivery_id}/resend/", "post"),
]
OPERATION_IDS = [f"{m.upper()} {p}" for p, m in OPERATIONS]


@pytest.fixture(scope="module")
def openapi(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = APIClient().get(SCHEMA, {"format": "json"})
    assert response.status_code == 200
    return response.json()


def parameters(openapi: dict, path: str, method: str) -> set[str]:
    return {p["name"] for p in openapi["paths"][path][method].get("parameters", [])}


def test_the_schema_is_served_as_openapi_3_without_credentials(db) -> None:
    # when
    response = APIClient().get(SCHEMA, {"format": "json"})
    # then
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_the_schema_is_served_as_yaml_by_default(db) -> None:
    # when
    response = APIClient().get(SCHEMA)
    # then
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_the_documentation_pages_answer_200_with_html(db, path) -> None:
    # when
    response = APIClient().get(path)
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_the_schema_lists_exactly_the_operations_of_the_spec(openapi) -> None:
    # when
    documented = {
        (path, method)
        for path, item in openapi["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    # then
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=OPERATION_IDS)
def test_every_operation_documents_its_auth_and_rate_errors_as_problems(
    openapi, path, method
) -> None:
    # when
    responses = openapi["paths"][path][method]["responses"]
    # then
    for code in ("401", "403", "429"):
        assert list(responses[code]["content"]) == ["application/problem+json"]


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=OPERATION_IDS)
def test_every_operation_error_has_a_problem_body_and_a_description(
    openapi, path, method
) -> None:
    # when
    errors = {
        code: response
        for code, response in openapi["paths"][path][method]["responses"].items()
        if code.startswith("4")
    }
    # then
    assert errors
    for response in errors.values():
        assert response["description"]
        schema = response["content"]["application/problem+json"]["schema"]
        assert schema["$ref"].startswith("#/components/schemas/")


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        ("/api/v1/payouts/", "get", {"400"}),
        ("/api/v1/payouts/", "post", {"400", "422"}),
        ("/api/v1/payouts/{payout_id}/", "get", {"400", "404"}),
        ("/api/v1/payouts/{payout_id}/", "patch", {"400", "404", "409", "412"}),
        ("/api/v1/payouts/{payout_id}/", "delete", {"404", "409", "412"}),
        ("/api/v1/payouts/{payout_id}/history/", "get", {"404"}),
        ("/api/v1/events/", "get", {"400", "406"}),
    ],
)
def test_each_operation_documents_the_errors_it_can_answer(
    openapi, path, method, codes
) -> None:
    # when
    responses = openapi["paths"][path][method]["responses"]
    # then
    assert codes <= responses.keys()


def test_the_409_problem_documents_current_status_and_allowed_transitions(
    openapi,
) -> None:
    # given
    response = openapi["paths"]["/api/v1/payouts/{payout_id}/"]["patch"]["responses"]
    ref = response["409"]["content"]["application/problem+json"]["schema"]["$ref"]
    # when
    schema = openapi["components"]["schemas"][ref.rsplit("/", 1)[1]]
    # then
    assert {"current_status", "allowed_transitions", "errors"} <= schema[
        "properties"
    ].keys()


@pytest.mark.parametrize(
    ("path", "method", "names"),
    [
        ("/api/v1/payouts/", "get", {*LIST_PARAMETERS, "as_of"}),
        ("/api/v1/payouts/", "post", {"Idempotency-Key"}),
        ("/api/v1/payouts/{payout_id}/", "get", {"version", "as_of"}),
        ("/api/v1/payouts/{payout_id}/", "patch", {"If-Match"}),
        ("/api/v1/payouts/{payout_id}/", "delete", {"If-Match"}),
        ("/api/v1/events/", "get", {"after", "limit"}),
    ],
)
def test_each_operation_documents_its_parameters(openapi, path, method, names) -> None:
    # then
    assert names <= parameters(openapi, path, method)


def test_the_create_operation_has_request_examples(openapi) -> None:
    # when
    body = openapi["paths"]["/api/v1/payouts/"]["post"]["requestBody"]
    # then
    assert len(body["content"]["application/json"]["examples"]) >= 2


def test_the_event_feed_documents_its_ndjson_form(openapi) -> None:
    # when
    ok = openapi["paths"]["/api/v1/events/"]["get"]["responses"]["200"]
    # then
    assert "application/x-ndjson" in ok["content"]


def test_the_event_feeds_limit_is_an_integer_or_all(openapi) -> None:
    # given
    parameters = openapi["paths"]["/api/v1/events/"]["get"]["parameters"]
    # when
    [limit] = [p for p in parameters if p["name"] == "limit"]
    # then
    assert limit["schema"]["oneOf"] == [
        {"type": "integer", "minimum": 1, "maximum": 1000},
        {"type": "string", "enum": ["all"]},
    ]


def test_the_schema_documents_bearer_api_keys(openapi) -> None:
    # when
    schemes = openapi["components"]["securitySchemes"]
    # then
    assert any(s.get("scheme") == "bearer" for s in schemes.values())


def test_the_schema_documents_the_metrics_token(openapi) -> None:
    # when
    scheme = openapi["components"]["securitySchemes"]["MetricsToken"]
    # then
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


@pytest.mark.parametrize(
    "component", ["RecipientDetailsInputRequest", "RecipientDetails"]
)
def test_recipient_details_are_told_apart_by_a_discriminator_on_type(
    openapi: dict, component: str
) -> None:
    # Generators (schemathesis, openapi-generator) pick the shape from `type`; without
    # a mapping, a card body also matched the bank account branch and no body was valid.
    schema = openapi["components"]["schemas"][component]
    mapping = schema["discriminator"]["mapping"]
    assert schema["discriminator"]["propertyName"] == "type"
    assert set(mapping) == {"card", "bank_account"}
    assert {ref.rsplit("/", 1)[1] for ref in mapping.values()} == {
        branch["$ref"].rsplit("/", 1)[1] for branch in schema["oneOf"]
    }


@pytest.mark.parametrize(
    ("path", "method"),
    [("/api/v1/payouts/", "post"), ("/api/v1/payouts/{payout_id}/", "patch")],
)
def test_operations_with_a_body_document_the_413_as_a_problem(
    openapi: dict, path: str, method: str
) -> None:
    response = openapi["paths"][path][method]["responses"]["413"]
    assert list(response["content"]) == ["application/problem+json"]


@pytest.mark.parametrize(
    "component",
    [
        "PayoutCreateInputRequest",
        "PayoutUpdateInputRequest",
        "CardDetailsInputRequest",
        "BankAccountDetailsInputRequest",
    ],
)
def test_request_bodies_refuse_unknown_fields_as_the_server_does(
    openapi: dict, component: str
) -> None:
    assert openapi["components"]["schemas"][component]["additionalProperties"] is False


def test_the_cancel_body_requires_a_status_as_the_server_does(openapi: dict) -> None:
    body = openapi["paths"]["/api/v1/payouts/{payout_id}/"]["patch"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert openapi["components"]["schemas"][ref.rsplit("/", 1)[1]]["required"] == [
        "status"
    ]


def test_query_parameters_say_whether_an_empty_value_is_the_parameter_left_out(
    openapi: dict,
) -> None:
    # given
    listing = openapi["paths"]["/api/v1/payouts/"]["get"]["parameters"]
    detail = openapi["paths"]["/api/v1/payouts/{payout_id}/"]["get"]["parameters"]
    # when
    empty_allowed = {
        p["name"]: p.get("allowEmptyValue", False)
        for p in listing + detail
        if p["in"] == "query"
    }
    # then: as_of and version answer an empty value with a 400; the rest ignore it
    assert {name for name, allowed in empty_allowed.items() if not allowed} == {
        "as_of",
        "version",
    }


def test_numeric_query_parameters_carry_the_bounds_the_server_checks(
    openapi: dict,
) -> None:
    events = {
        p["name"]: p["schema"]
        for p in openapi["paths"]["/api/v1/events/"]["get"]["parameters"]
    }
    detail = {
        p["name"]: p["schema"]
        for p in openapi["paths"]["/api/v1/payouts/{payout_id}/"]["get"]["parameters"]
    }
    assert (events["after"]["minimum"], events["after"]["maximum"]) == (0, 10**18 - 1)
    assert (detail["version"]["minimum"], detail["version"]["maximum"]) == (
        1,
        999_999_999,
    )


def test_the_if_match_pattern_is_the_one_the_server_checks(openapi: dict) -> None:
    # given
    header = next(
        p
        for p in openapi["paths"]["/api/v1/payouts/{payout_id}/"]["delete"][
            "parameters"
        ]
        if p["name"] == "If-Match"
    )
    pattern = re.compile(header["schema"]["pattern"])
    # then
    for good in ['"1"', 'W/"12"', "*"]:
        assert pattern.search(good)
    for bad in ["1", '"one"', '"1", "2"', "", "0", 'W/"-1"']:
        assert not pattern.search(bad)


def test_the_documented_create_examples_are_accepted(
    openapi: dict, staff_client: APIClient
) -> None:
    # schemathesis does not hold POST payouts/ to positive data (see
    # tests/api/schemathesis.toml), so its documented examples are checked here
    body = openapi["paths"]["/api/v1/payouts/"]["post"]["requestBody"]
    examples = body["content"]["application/json"]["examples"].values()
    for example in examples:
        response = staff_client.post(
            "/api/v1/payouts/", example["value"], format="json"
        )
        assert response.status_code == 201, response.content
