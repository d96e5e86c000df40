"""
The two authentication styles of the Open API, and the token manager that shares one token.

*Header* style (the current convention) gets an ``accessToken`` from ``/oauth2.0/token`` and sends it as
``authorization: Bearer``, with ``x-fs-ea`` and ``x-fs-userid`` headers. *Legacy* style gets a
``corpAccessToken`` from ``/cgi/corpAccessToken/get/V2`` and puts it, the ``corpId`` and
``currentOpenUserId`` at the top level of every request body.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from fxiaoke_provider.api.config import ClientConfig
from fxiaoke_provider.api.token_store import Token, TokenStore, store_key

HEADER_TOKEN_ENDPOINT = "/oauth2.0/token"
LEGACY_TOKEN_ENDPOINT = "/cgi/corpAccessToken/get/V2"


def token_endpoint(config: ClientConfig) -> str:
    """Return the token endpoint of the connection's auth style."""
    return HEADER_TOKEN_ENDPOINT if config.auth_style == "header" else LEGACY_TOKEN_ENDPOINT


def token_request_body(config: ClientConfig) -> dict[str, str]:
    """Build the token request body of the connection's auth style."""
    body = {"appId": config.app_id, "appSecret": config.app_secret, "permanentCode": config.permanent_code}
    if config.auth_style == "header":
        body["grantType"] = "app_secret"
    return body


def parse_token(config: ClientConfig, body: Mapping[str, Any], now: float) -> Token:
    """
    Read the token out of a successful token response.

    :param config: the client configuration, for the auth style.
    :param body: the parsed response body, ``errorCode`` already checked to be 0.
    :param now: the current epoch time.
    :raises ValueError: naming the field that is missing or malformed.
    """
    value_key, tenant_key = (
        ("accessToken", "ea") if config.auth_style == "header" else ("corpAccessToken", "corpId")
    )
    value = body.get(value_key)
    tenant = body.get(tenant_key)
    expires_in = body.get("expiresIn")
    if not isinstance(value, str) or not value:
        raise ValueError(f"the token response has no {value_key} string")
    if not isinstance(tenant, (str, int)) or isinstance(tenant, bool) or str(tenant) == "":
        raise ValueError(f"the token response has no {tenant_key}")
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in <= 0:
        raise ValueError(
            f"the token response's expiresIn is {expires_in!r}, not a positive number of seconds"
        )
    return Token(value=value, tenant=str(tenant), obtained_at=now, expires_at=now + float(expires_in))


def apply_auth(
    config: ClientConfig, token: Token, body: dict[str, Any], headers: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """
    Add the credentials of the connection's auth style to a request.

    :param config: the client configuration.
    :param token: the access token.
    :param body: the request body; a new dict is returned, the argument is not changed.
    :param headers: the request headers; a new dict is returned.
    """
    if config.auth_style == "header":
        headers = {
            **headers,
            "authorization": f"Bearer {token.value}",
            "x-fs-ea": token.tenant,
            "x-fs-userid": config.user_id or "",
        }
        return body, headers
    body = {
        **body,
        "corpAccessToken": token.value,
        "corpId": token.tenant,
        "currentOpenUserId": config.open_user_id or "",
    }
    return body, headers


class TokenManager:
    """
    Hand out one shared token per tenant and app, fetching a new one only when needed.

    :param config: the client configuration.
    :param store: where tokens are shared.
    :param fetch: calls the token endpoint and returns a new token.
    :param on_token: receives every token value as it is read, so the caller can register it as a secret.
    :param clock: returns the current epoch time.
    """

    def __init__(
        self,
        config: ClientConfig,
        store: TokenStore,
        fetch: Callable[[], Token],
        *,
        on_token: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.key = store_key(
            config.base_url, config.app_id, config.auth_style, config.app_secret, config.permanent_code
        )
        self._fetch = fetch
        self._on_token = on_token
        self._clock = clock
        self._seen: set[str] = set()

    def _reveal(self, token: Token) -> Token:
        if token.value not in self._seen:
            self._on_token(token.value)
            self._seen.add(token.value)
        return token

    def get(self) -> Token:
        """Return a fresh token from the store, or fetch one while holding the store's lock."""
        token = self.store.get(self.key)
        if token is not None and token.is_fresh(self._clock()):
            return self._reveal(token)
        with self.store.lock(self.key):
            # Another process or thread may have fetched while this one waited for the lock.
            token = self.store.get(self.key)
            if token is not None and token.is_fresh(self._clock()):
                return self._reveal(token)
            token = self._fetch()
            self._reveal(token)
            self.store.put(self.key, token)
            return token

    def invalidate(self, token: Token) -> None:
        """
        Drop a token that the server rejected, unless the store already contains a newer one.

        :param token: the rejected token.
        """
        self.store.discard(self.key, token.value)
