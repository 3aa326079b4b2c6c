"""The seed APIs, each served exactly as its document says, over the one core.

Every package here only translates a wire format (paths, auth, field names and types,
status words, error shapes, pagination) to and from the core services. Each builds its own
FastAPI app, so its errors keep its own shape and its docs live at <prefix>/docs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match

from invoicehub.api.runtime import Runtime


class CompatMountError(RuntimeError):
    """Two APIs (or an API and the native one) would answer the same path."""


@dataclass(frozen=True, slots=True)
class CompatApi:
    name: str
    build: Callable[[Runtime], FastAPI]


def registered_apis() -> list[CompatApi]:
    from invoicehub.compat import apipay, botsbusiness, clawprint, magento, wallet

    return [
        CompatApi("apipay", apipay.build_app),
        CompatApi("clawprint", clawprint.build_app),
        CompatApi("magento", magento.build_app),
        CompatApi("wallet", wallet.build_app),
        CompatApi("botsbusiness", botsbusiness.build_app),
    ]


def _prefix(runtime: Runtime, name: str) -> str:
    raw = str(getattr(runtime.settings, f"compat_{name}_prefix"))
    prefix = raw.strip().rstrip("/")
    if prefix and not prefix.startswith("/"):
        raise CompatMountError(
            f"INVOICEHUB_COMPAT_{name.upper()}_PREFIX must start with / (or be empty); got {raw!r}"
        )
    return prefix


def _operations(sub: FastAPI, prefix: str) -> list[tuple[str, str, str]]:
    """(method, path template, a concrete path) for each operation of a seed API."""
    operations = []
    for path, methods in sub.openapi().get("paths", {}).items():
        concrete = prefix + re.sub(r"\{[^}]+\}", "1", path)
        for method in methods:
            operations.append((method.upper(), prefix + path, concrete))
    return operations


def _answered_by(routes: list[BaseRoute], method: str, path: str) -> BaseRoute | None:
    """The route that would answer ``method path`` already, if any (Starlette's own matching)."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route
    return None


def mount_compat_apis(app: FastAPI, runtime: Runtime) -> list[tuple[str, str]]:
    """Mounts every seed API at its prefix; returns (name, prefix) pairs. Refuses to start,
    naming both sides, when a path of one would already be answered by the native API or
    another seed API (which would make it unreachable)."""
    planned = [
        (api.name, _prefix(runtime, api.name), api.build(runtime)) for api in registered_apis()
    ]
    roots = [name for name, prefix, _ in planned if not prefix]
    if len(roots) > 1:
        raise CompatMountError(
            f"only one API can be mounted at the root; these all are: {', '.join(roots)}"
        )
    owners: dict[int, str] = {}
    # Prefixed mounts first: a root mount answers every path, so it must come last.
    for name, prefix, sub in sorted(planned, key=lambda item: item[1] == ""):
        for method, template, concrete in _operations(sub, prefix):
            clash = _answered_by(list(app.router.routes), method, concrete)
            if clash is not None:
                owner = owners.get(id(clash), "the native API")
                raise CompatMountError(
                    f"cannot mount the {name} API at {prefix or 'the root'!r}: {method} {template} "
                    f"is already answered by {owner}; set INVOICEHUB_COMPAT_{name.upper()}_PREFIX to another prefix"
                )
        app.mount(prefix, sub, name=f"compat-{name}")
        owners[id(app.router.routes[-1])] = f"the {name} API"
    return [(name, prefix) for name, prefix, _ in planned]
