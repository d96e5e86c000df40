"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from fxiaoke_provider import __version__


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata: package, versions, modules and the ``fxiaoke`` connection form."""
    return {
        "package-name": "fxiaoke-airflow-provider",
        "name": "Fxiaoke",
        "description": "Fxiaoke (ShareCRM) Open API: presigned file URLs, a hook and a local API emulator.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Fxiaoke",
                "external-doc-url": "https://developer.fxiaoke.com/openapi_v2/en/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Fxiaoke", "python-modules": ["fxiaoke_provider.hooks.fxiaoke"]}],
        "operators": [
            {
                "integration-name": "Fxiaoke",
                "python-modules": [
                    "fxiaoke_provider.operators.files",
                    "fxiaoke_provider.operators.crm",
                    "fxiaoke_provider.operators.storage",
                ],
            }
        ],
        "connection-types": [
            {
                "connection-type": "fxiaoke",
                "hook-class-name": "fxiaoke_provider.hooks.fxiaoke.FxiaokeHook",
                "hook-name": "Fxiaoke CRM",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {
                        "host": "Cloud domain or base URL",
                        "login": "App ID",
                        "password": "App secret",
                    },
                    "placeholders": {
                        "host": "open.fxiaoke.com",
                        "port": "443",
                        "login": "FSAID_...",
                        "extra": '{"permanent_code": "...", "user_id": "1000"}',
                    },
                },
                "conn-fields": {
                    "permanent_code": {
                        "label": "Permanent code",
                        "description": "The tenant's permanent authorization code for this app.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "auth_style": {
                        "label": "Auth style",
                        "description": "header: Bearer token and x-fs-* headers (current). legacy: corpAccessToken in the body.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["header", "legacy"],
                            "default": "header",
                        },
                    },
                    "user_id": {
                        "label": "Employee ID",
                        "description": "The acting employee's Employee ID, sent as x-fs-userid (header style).",
                        "schema": {"type": ["string", "null"], "pattern": "^-?[0-9]*$"},
                    },
                    "open_user_id": {
                        "label": "Open user ID",
                        "description": "The acting user's FSUID_... ID, sent as currentOpenUserId (legacy style).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "connect_timeout": {
                        "label": "Connect timeout (s)",
                        "description": "Seconds to wait for a TCP connection. Default 10.",
                        "schema": {"type": ["number", "null"], "minimum": 0.001},
                    },
                    "read_timeout": {
                        "label": "Read timeout (s)",
                        "description": "Seconds to wait for a response. Default 60.",
                        "schema": {"type": ["number", "null"], "minimum": 0.001},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries after the first attempt for transient errors. Default 5.",
                        "schema": {"type": ["integer", "null"], "minimum": 0},
                    },
                    "max_retry_wait": {
                        "label": "Max retry wait (s)",
                        "description": "Upper bound of one back-off wait in seconds. Default 30.",
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                    "cache_backend": {
                        "label": "Token cache",
                        "description": "file: share the token with every process of the host. airflow: with every host, "
                        "through Airflow Variables. memory: this process only.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["file", "airflow", "memory"],
                            "default": "file",
                        },
                    },
                    "cache_dir": {
                        "label": "Cache folder",
                        "description": "Absolute folder of the shared token and rate-limit files; ~ is expanded. Default "
                        "$XDG_CACHE_HOME/fxiaoke-airflow-provider, else ~/.cache/fxiaoke-airflow-provider.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "rate_limit_calls": {
                        "label": "Rate limit: calls",
                        "description": "Calls allowed per endpoint per window. Default 100.",
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "rate_limit_window": {
                        "label": "Rate limit: window (s)",
                        "description": "Length of the rate-limit window in seconds. Default 20.",
                        "schema": {"type": ["number", "null"], "minimum": 0.001},
                    },
                },
            }
        ],
    }
