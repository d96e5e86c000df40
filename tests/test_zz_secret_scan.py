"""The suite-wide check that no output of any test contains a secret; it runs after every other test."""

from __future__ import annotations

from tests import secret_scan


def test_no_secret_in_any_output() -> None:
    texts = list(secret_scan.TEXTS)
    secrets = {value for value in secret_scan.SECRETS if len(value) >= 8}
    assert texts, "no output was recorded; the recording plugin is not installed"
    assert len(secrets) > 2, "no token or signature was recorded; run this with the rest of the suite"
    leaks = sorted(
        {
            f"{value[:4]}... in text {index}"
            for index, text in enumerate(texts)
            for value in secrets
            if value in text
        }
    )
    assert not leaks, f"{len(leaks)} secret(s) found in test output: {leaks[:5]}"
