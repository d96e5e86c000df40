"""A token store shared by every host of a deployment through Airflow Variables."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowRuntimeError

from fxiaoke_provider.api.token_store import FileTokenStore, Token, TokenStore

log = logging.getLogger(__name__)

#: Variable name prefix. Airflow hides the values of Variables whose names contain "token" in its UI
#: and task logs, so the stored tokens are masked there.
VARIABLE_PREFIX = "fxiaoke_access_token_"

# Variable.set and Variable.delete need a running task (Airflow 3.3 raises ImportError outside one),
# and Variable.get raises AirflowRuntimeError when the execution API refuses the request.
_OUTSIDE_TASK_ERRORS = (ImportError, AirflowRuntimeError)


class AirflowVariableTokenStore(TokenStore):
    """
    Tokens shared by the worker hosts of a distributed deployment (Celery or Kubernetes executor).

    Each token is kept in an Airflow Variable, which tasks reach through the execution API, so no new
    infrastructure is needed. A per-host :class:`FileTokenStore` keeps a copy, so most calls read a
    local file instead of calling the API server, and its file lock serialises token fetches among the
    processes of one host.

    Outside a task, for example when the API server runs a connection test, Variables cannot be written,
    and the store works like the file store alone.

    :param directory: folder of the per-host copy and lock; ``None`` means the user's cache folder.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.local = FileTokenStore(directory)
        self.directory = self.local.directory

    @staticmethod
    def variable_name(key: str) -> str:
        """Return the Variable name of a store key."""
        return f"{VARIABLE_PREFIX}{key}"

    def get(self, key: str) -> Token | None:
        """Read the host's copy while it is fresh, otherwise the deployment's Variable."""
        local = self.local.get(key)
        if local is not None and local.is_fresh(time.time()):
            return local
        try:
            raw = Variable.get(self.variable_name(key), default=None)
        except _OUTSIDE_TASK_ERRORS as err:
            log.debug(
                "Could not read the shared token Variable (%s); using the host's copy", type(err).__name__
            )
            return local
        if not raw:
            return local
        try:
            shared = Token(**json.loads(raw))
        except (ValueError, TypeError):
            log.warning(
                "Ignoring the Variable %s: it does not contain a token record", self.variable_name(key)
            )
            return local
        self.local.put(key, shared)
        return shared

    def put(self, key: str, token: Token) -> None:
        """Store a token on this host and in the deployment's Variable."""
        self.local.put(key, token)
        try:
            Variable.set(
                self.variable_name(key),
                json.dumps(asdict(token)),
                description="Fxiaoke access token shared by fxiaoke-airflow-provider; safe to delete.",
            )
        except _OUTSIDE_TASK_ERRORS as err:
            log.debug("Could not write the shared token Variable (%s); kept on this host", type(err).__name__)

    def discard(self, key: str, value: str) -> None:
        """Drop a rejected token from this host and from the Variable, unless a newer token replaced it."""
        self.local.discard(key, value)
        try:
            raw = Variable.get(self.variable_name(key), default=None)
            if raw and json.loads(raw).get("value") == value:
                Variable.delete(self.variable_name(key))
        except _OUTSIDE_TASK_ERRORS as err:
            log.debug("Could not update the shared token Variable (%s)", type(err).__name__)
        except ValueError:
            log.warning(
                "Ignoring the Variable %s: it does not contain a token record", self.variable_name(key)
            )

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        """
        Return the host's lock for fetching a token.

        NOTE: hosts do not lock each other out, because Variables offer no atomic update. Two hosts that
        find no fresh token at the same moment both call the token endpoint. The server returns the same
        token within 6600 s of issue, so both get it, but those two calls overlap.
        """
        return self.local.lock(key)
