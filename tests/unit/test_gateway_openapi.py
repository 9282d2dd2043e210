"""The gateway's OpenAPI document: valid OpenAPI 3.1, generated from the whole standard,
its event schemas accept the standard's examples and refuse what the standard refuses,
and docs/api/openapi.json is the document the command generates today."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from adapters.gateway.json_schema import REF_PATTERNS, X_PII, X_REF, event_json_schema
from adapters.gateway.openapi import DEFAULT_SERVER_URL, openapi_document, openapi_json
from bus.cli import gateway_cmd
from bus.cli.main import main
from bus.contract import refcodes
from bus.contract.refcodes import RefCode
from bus.contract.schema import AvroSchema
from bus.contract.standard import example, load_standard
from bus.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "api" / "openapi.json"
STANDARD = load_standard()
EXAMPLES = {name: example(name) for name in STANDARD}
DOCUMENT = openapi_document(STANDARD, EXAMPLES)
REGENERATE = "spbe-bus gateway openapi --output docs/api/openapi.json"


def validator(component: str) -> jsonschema.Draft202012Validator:
    """A validator of one component schema, resolving its $refs inside the document."""
    root = {"$ref": f"#/components/schemas/{component}", "components": DOCUMENT["components"]}
    return jsonschema.Draft202012Validator(
        root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")


def test_every_event_type_of_the_standard_has_a_schema_and_is_a_postable_event_name() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert set(STANDARD) <= set(schemas)
    post = DOCUMENT["paths"]["/api/v1/events/{EventName}"]["post"]
    (name_parameter,) = [p for p in post["parameters"] if p.get("name") == "EventName"]
    assert name_parameter["schema"]["enum"] == sorted(STANDARD)
    body = post["requestBody"]["content"]["application/json"]
    assert body["schema"]["oneOf"] == [
        {"$ref": f"#/components/schemas/{n}"} for n in sorted(STANDARD)
    ]
    assert set(body["examples"]) == set(STANDARD)


def test_the_paths_are_those_of_the_spbe_api_table() -> None:
    assert set(DOCUMENT["paths"]) == {
        "/oauth/token", "/api/v1/umkm", "/api/v1/events/{EventName}",
        "/api/v1/penduduk/{nik}", "/api/v1/penduduk", "/api/v1/pajak", "/healthz",
    }  # fmt: skip
    assert DOCUMENT["servers"] == [{"url": DEFAULT_SERVER_URL}]


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_each_example_of_the_standard_validates_against_its_component_schema(name: str) -> None:
    validator(name).validate(EXAMPLES[name])


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_no_example_validates_against_the_schema_of_another_event_so_one_of_is_exact(
    name: str,
) -> None:
    others = [other for other in STANDARD if other != name]
    assert not any(validator(other).is_valid(EXAMPLES[name]) for other in others)


def _broken(name: str, path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLES[name])
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return body


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("UmkmTerdaftar", "nik_pemilik", "327302570890000"),  # 15 digits
        ("UmkmTerdaftar", "kode_wilayah", "3273021003"),  # a BPS code, not Kemendagri
        ("UmkmTerdaftar", "nib", "912030123456"),  # 12 digits, in a nullable union
        ("UmkmTerdaftar", "skala_usaha", "BESAR"),  # not a symbol of the UMKM enum
        ("UmkmTerdaftar", "jumlah_tenaga_kerja", "3"),  # a string, not an integer
        ("UmkmTerdaftar", "terdaftar_pada", "28-11-2026"),  # not a date-time
        ("UmkmTerdaftar", "nama_usaha", KeyError),  # required
        ("UmkmTerdaftar", "warna", "merah"),  # not a field of the schema
        ("PendudukUpdated", "alamat.kode_wilayah", "32-73-02-1003"),  # nested record
        ("PendudukUpdated", "tanggal_lahir", "17/08/1990"),  # not a date
        ("PajakDaerahDibayar", "pokok", 1250000.5),  # money is a string
        ("PajakDaerahDibayar", "pokok", "1250000.005"),  # three decimals
        ("PajakDaerahDibayar", "objek.nop", "32730200010020015"),  # 17 digits
    ],
)
def test_a_body_breaking_the_standard_fails_its_schema(name: str, path: str, value: Any) -> None:
    assert not validator(name).is_valid(_broken(name, path, value))


def test_a_nullable_field_may_be_null_or_left_out() -> None:
    assert validator("UmkmTerdaftar").is_valid(_broken("UmkmTerdaftar", "nib", None))
    assert validator("UmkmTerdaftar").is_valid(_broken("UmkmTerdaftar", "nib", KeyError))


def test_field_docs_personal_data_and_reference_codes_come_from_the_avro_schema() -> None:
    umkm = DOCUMENT["components"]["schemas"]["UmkmTerdaftar"]
    nik = umkm["properties"]["nik_pemilik"]
    assert nik["description"].startswith("NIK pemilik usaha, 16 digit.")
    assert nik[X_PII] is True
    assert nik[X_REF] == "NIK"
    assert nik["pattern"] == REF_PATTERNS[RefCode.NIK]
    assert X_PII not in umkm["properties"]["nama_usaha"]
    assert umkm["x-spbe-type"] == "id.go.spbe.dinkopukm.UmkmTerdaftar.v1"
    pii = {path for path in STANDARD["UmkmTerdaftar"].pii_fields()}
    assert pii == {name for name, spec in umkm["properties"].items() if spec.get(X_PII)}


@pytest.mark.parametrize("code", list(RefCode))
def test_each_reference_code_pattern_admits_what_refcodes_accepts_and_is_anchored(
    code: RefCode,
) -> None:
    valid = {
        RefCode.NIK: "3273025708900003", RefCode.NO_KK: "3273022301150007",
        RefCode.KODE_WILAYAH_KEMENDAGRI: "32.73.02.1003", RefCode.KODE_WILAYAH_BPS: "3273020003",
        RefCode.KBLI: "56102", RefCode.NIB: "9120301234567", RefCode.NPWP: "3273011203850002",
        RefCode.NOP: "327302000100200150",
    }[code]  # fmt: skip
    assert refcodes.problem(code, valid) is None
    pattern = REF_PATTERNS[code]
    assert pattern.startswith("^")
    assert pattern.endswith("$")
    assert re.fullmatch(pattern, valid)
    assert not re.fullmatch(pattern, valid + "0")
    assert refcodes.problem(code, valid + "0") is not None


def test_reader_schemas_make_every_field_optional_at_every_depth() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    person = schemas["PendudukData"]
    assert "required" not in person
    assert "required" not in person["properties"]["alamat"]
    assert "subscription" in person["description"]
    subset = {"nama_lengkap": "Siti", "alamat": {"kode_wilayah": "32.73.02.1003"}}
    assert validator("PendudukData").is_valid(subset)
    assert validator("PajakData").is_valid({"ntpd": "32730126112800001547"})
    assert not validator("PendudukData").is_valid({"nik": "123"})


def test_problem_responses_have_the_rfc_9457_shape_with_field_errors() -> None:
    problem = {
        "type": "urn:spbe:problem:invalid-event", "title": "Invalid event", "status": 422,
        "detail": "1 field breaks the standard",
        "errors": [{"field": "nik_pemilik", "problem": "NIK has 15 digits; it needs 16",
                    "rule": "NIK: 16 digits"}],
    }  # fmt: skip
    assert validator("Problem").is_valid(problem)
    problem["errors"][0].pop("rule")
    assert not validator("Problem").is_valid(problem)
    responses = DOCUMENT["components"]["responses"]
    assert "application/problem+json" in responses["UnprocessableContent"]["content"]
    assert "Retry-After" in responses["TooManyRequests"]["headers"]


def test_every_operation_names_its_statuses_and_the_posts_take_an_idempotency_key() -> None:
    paths = DOCUMENT["paths"]
    for path in ("/api/v1/umkm", "/api/v1/events/{EventName}"):
        post = paths[path]["post"]
        assert {"202", "400", "401", "403", "413", "415", "422", "429", "503"} <= set(
            post["responses"]
        )
        assert {"$ref": "#/components/parameters/IdempotencyKey"} in post["parameters"]
        assert post["security"] == [{"oauth2": ["events:publish"]}]
    for path in ("/api/v1/penduduk/{nik}", "/api/v1/penduduk", "/api/v1/pajak"):
        get = paths[path]["get"]
        assert {"200", "304", "401", "403", "429"} <= set(get["responses"])
        assert set(get["responses"]["200"]["headers"]) == {"ETag", "Last-Modified"}
        assert get["security"] == [{"oauth2": ["data:read"]}]
    flow = DOCUMENT["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token"
    assert set(flow["scopes"]) == {"events:publish", "data:read"}


def test_an_example_for_an_event_the_standard_lacks_is_refused() -> None:
    with pytest.raises(ConfigError, match="IzinDicabut"):
        openapi_document(STANDARD, {**EXAMPLES, "IzinDicabut": {}})


def test_an_avro_type_without_a_json_form_is_refused_naming_the_event() -> None:
    schema = AvroSchema.from_json(
        {"type": "record", "name": "Berkas", "namespace": "id.go.spbe.x",
         "fields": [{"name": "isi", "type": "bytes"}]}
    )  # fmt: skip
    with pytest.raises(ConfigError, match="Berkas"):
        event_json_schema(schema)


def test_the_committed_openapi_json_is_the_generated_document() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == openapi_json(DOCUMENT), (
        f"docs/api/openapi.json is out of date with the standard; regenerate it: {REGENERATE}"
    )


def test_the_command_writes_the_document_with_the_server_url_given(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    assert main(["gateway", "openapi", "--output", str(target), "--server-url",
                 "https://gateway.example.go.id"]) == 0  # fmt: skip
    written = json.loads(target.read_text(encoding="utf-8"))
    assert written["servers"] == [{"url": "https://gateway.example.go.id"}]
    assert written["paths"] == json.loads(json.dumps(DOCUMENT["paths"]))


def test_the_commands_default_server_url_is_the_documents() -> None:
    assert gateway_cmd._DEFAULT_SERVER_URL == DEFAULT_SERVER_URL
