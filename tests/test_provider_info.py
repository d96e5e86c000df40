"""Tests of the provider metadata against Airflow's schemas, the installed distribution and the hook."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import json
from typing import Any

import jsonschema
import pytest
from airflow.providers_manager import ProvidersManager
from packaging.utils import canonicalize_name

import fxiaoke_provider
from fxiaoke_provider.api.config import KNOWN_EXTRAS
from fxiaoke_provider.get_provider_info import get_provider_info
from fxiaoke_provider.hooks.fxiaoke import FxiaokeHook

ENTRY_POINT_GROUP = "apache_airflow_provider"
ENTRY_POINT_VALUE = "fxiaoke_provider.get_provider_info:get_provider_info"
DISTRIBUTION = "fxiaoke-airflow-provider"
#: Extras that contain credentials. The connection form must mask what is typed into them.
SECRET_FIELDS = frozenset({"permanent_code"})
#: The standard fields of Airflow's connection form.
STANDARD_FIELDS = frozenset({"description", "host", "port", "login", "password", "schema", "extra"})


def _airflow_schema(name: str) -> dict[str, Any]:
    text = importlib.resources.files("airflow").joinpath(name).read_text(encoding="utf-8")
    return json.loads(text)


def _import_class(dotted_path: str) -> Any:
    module, _, name = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _entry_point() -> importlib.metadata.EntryPoint:
    matches = [
        ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.value == ENTRY_POINT_VALUE
    ]
    assert len(matches) == 1, (
        f"entry points of group {ENTRY_POINT_GROUP} naming {ENTRY_POINT_VALUE}: {matches}"
    )
    return matches[0]


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    return get_provider_info()


@pytest.fixture(scope="module")
def conn_type(info: dict[str, Any]) -> dict[str, Any]:
    (entry,) = info["connection-types"]
    return entry


class TestSchemas:
    def test_matches_runtime_schema(self, info: dict[str, Any]) -> None:
        schema = _airflow_schema("provider_info.schema.json")
        jsonschema.Draft7Validator(schema).validate(info)

    def test_connection_types_match_yaml_schema(self, info: dict[str, Any]) -> None:
        root = _airflow_schema("provider.yaml.schema.json")
        schema = dict(root["properties"]["connection-types"])
        # Keep the root's definitions, so any "$ref" inside the part still resolves.
        schema["definitions"] = root.get("definitions", {})
        jsonschema.Draft7Validator(schema).validate(info["connection-types"])

    def test_field_behaviour_matches_schema(self, conn_type: dict[str, Any]) -> None:
        behaviour = conn_type["ui-field-behaviour"]
        schema = _airflow_schema("customized_form_field_behaviours.schema.json")
        jsonschema.Draft7Validator(schema).validate(
            {
                "hidden_fields": behaviour["hidden-fields"],
                "relabeling": behaviour["relabeling"],
                "placeholders": behaviour["placeholders"],
            }
        )

    def test_field_defaults_match_schemas(self, conn_type: dict[str, Any]) -> None:
        for name, field in conn_type["conn-fields"].items():
            validator = jsonschema.Draft7Validator(field["schema"])
            validator.check_schema(field["schema"])
            default = field["schema"].get("default")
            assert validator.is_valid(default), f"{name}: default {default!r} fails the field's own schema"


class TestDistribution:
    def test_package_name_is_distribution(self, info: dict[str, Any]) -> None:
        dist_name = _entry_point().dist.metadata["Name"]
        assert info["package-name"] == canonicalize_name(dist_name)
        assert info["package-name"] == DISTRIBUTION

    def test_version_matches_distribution(self, info: dict[str, Any]) -> None:
        assert info["versions"][0] == fxiaoke_provider.__version__
        assert info["versions"][0] == importlib.metadata.version(DISTRIBUTION)

    def test_entry_point_loads_function(self) -> None:
        assert _entry_point().load() is get_provider_info

    def test_listed_modules_import(self, info: dict[str, Any]) -> None:
        modules = [
            module for kind in ("hooks", "operators") for e in info[kind] for module in e["python-modules"]
        ]
        assert modules
        for module in modules:
            importlib.import_module(module)

    def test_providers_manager_registers_provider(self) -> None:
        provider = ProvidersManager().providers[DISTRIBUTION]
        assert provider.version == fxiaoke_provider.__version__


class TestConnectionType:
    def test_hook_class_imports(self, conn_type: dict[str, Any]) -> None:
        assert _import_class(conn_type["hook-class-name"]) is FxiaokeHook

    def test_hook_conn_type_matches(self, conn_type: dict[str, Any]) -> None:
        assert FxiaokeHook.conn_type == conn_type["connection-type"]

    def test_hook_name_matches(self, conn_type: dict[str, Any]) -> None:
        assert FxiaokeHook.hook_name == conn_type["hook-name"]

    def test_conn_fields_are_known_extras(self, conn_type: dict[str, Any]) -> None:
        unknown = sorted(set(conn_type["conn-fields"]) - KNOWN_EXTRAS)
        assert unknown == []

    def test_extra_placeholder_keys_known(self, conn_type: dict[str, Any]) -> None:
        placeholder = json.loads(conn_type["ui-field-behaviour"]["placeholders"]["extra"])
        assert sorted(set(placeholder) - KNOWN_EXTRAS) == []

    def test_relabeled_fields_are_standard(self, conn_type: dict[str, Any]) -> None:
        behaviour = conn_type["ui-field-behaviour"]
        for part in ("relabeling", "placeholders"):
            assert set(behaviour[part]) <= STANDARD_FIELDS, part
            assert not set(behaviour[part]) & set(behaviour["hidden-fields"]), f"{part} names a hidden field"

    @pytest.mark.parametrize("name", sorted(SECRET_FIELDS))
    def test_secret_field_is_password(self, conn_type: dict[str, Any], name: str) -> None:
        assert conn_type["conn-fields"][name]["schema"].get("format") == "password"

    @pytest.mark.parametrize("name", sorted(SECRET_FIELDS))
    def test_secret_widget_is_sensitive(self, name: str) -> None:
        widget = ProvidersManager().connection_form_widgets[f"extra__fxiaoke__{name}"]
        assert widget.is_sensitive

    def test_field_behaviour_is_registered(self, conn_type: dict[str, Any]) -> None:
        behaviour = ProvidersManager().field_behaviours["fxiaoke"]
        assert behaviour["hidden_fields"] == conn_type["ui-field-behaviour"]["hidden-fields"]
