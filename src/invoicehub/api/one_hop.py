"""One worker-thread hop per native API request.

The endpoints are plain functions that block on the database, so FastAPI runs each in a
worker thread. Left to itself a request crossed into the pool three times: to look the
caller's key up (the ``authenticate`` dependency), to run the endpoint, and to commit (the
request-transaction middleware). Each crossing costs ~0.1 ms of CPU and two thread wake-ups
(docs/benchmarks.md, session 5). ``OneHopRoute`` makes those three one:

* the key lookup is *deferred*: the route's ``Auth`` parameter is solved by
  ``defer_caller``, which only reads the headers (a request without a key is refused there,
  as before) and hands the endpoint wrapper a ``DeferredCaller``;
* the wrapper, in the endpoint's thread, looks the caller up (``deps.authenticate``, which
  also counts the request against the key's rate limit), runs the endpoint, and when the
  answer is a successful plain response commits the request's transaction with it
  (``SessionHolder.finish``), so the middleware has nothing left to do in a thread.

The thread comes from the runtime's own small pools (``Runtime.api_threads``), one for
reads and one for writes, so reads never queue behind writers waiting for a lock.

What a client sees does not change: when the parameters or the body are refused before
the endpoint runs, the error handlers look the caller up first (``settle_deferred_caller``),
so a bad key still answers 401, a spent limit 429, and a refused body still counts against
the limit. Answers that are not plain responses (a pydantic model FastAPI serializes, an
error) are committed or rolled back by the middleware, as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin

import anyio.to_thread
from fastapi import Depends, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_typed_return_annotation, get_typed_signature
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute

from invoicehub.api.deps import DeferredCaller, authenticate, defer_caller, resolve_caller
from invoicehub.api.middleware import SAFE_METHODS, SessionHolder
from invoicehub.api.runtime import Runtime


def _is_auth(annotation: Any) -> bool:
    return get_origin(annotation) is Annotated and any(
        isinstance(extra, DependsParam) and extra.dependency is authenticate
        for extra in get_args(annotation)[1:]
    )


class OneHopRoute(APIRoute):
    """A route of the native API whose key lookup, endpoint and commit share one thread."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        signature = get_typed_signature(endpoint)
        auth_params = [name for name, p in signature.parameters.items() if _is_auth(p.annotation)]
        if auth_params and not inspect.iscoroutinefunction(endpoint):
            endpoint = _in_one_hop(endpoint, signature, auth_params)
        super().__init__(path, endpoint, **kwargs)
        if auth_params and _runs_after_the_endpoint(self.dependant):
            # Background tasks and the teardown of yield dependencies run after the endpoint
            # returned, when its thread has committed and closed the session already.
            raise TypeError(
                f"{path}: a OneHopRoute endpoint cannot take BackgroundTasks or yield "
                "dependencies (the transaction ends with the endpoint)"
            )


def _runs_after_the_endpoint(dependant: Dependant) -> bool:
    call = dependant.call
    return (
        dependant.background_tasks_param_name is not None
        or inspect.isgeneratorfunction(call)
        or inspect.isasyncgenfunction(call)
        or any(_runs_after_the_endpoint(d) for d in dependant.dependencies)
    )


def _in_one_hop(
    endpoint: Callable[..., Any], signature: inspect.Signature, auth_params: list[str]
) -> Callable[..., Any]:
    def work(values: dict[str, Any]) -> Any:
        holder: SessionHolder | None = None
        for name in auth_params:
            deferred: DeferredCaller = values[name]
            values[name] = resolve_caller(deferred)
            holder = deferred.request.state.db
        answer = endpoint(**values)
        body = getattr(answer, "body", None)
        if (
            holder is not None
            and isinstance(answer, Response)
            and isinstance(body, bytes)
            and answer.status_code < 400
        ):
            holder.finish(answer.status_code, body, answer.headers.get("content-type"))
        return answer

    async def run(**values: Any) -> Any:
        request = values[auth_params[0]].request
        runtime: Runtime = request.state.runtime
        limiter = runtime.api_threads(write=request.method not in SAFE_METHODS)
        # Shielded: cancelled from outside (a shutdown), the await would return at once while
        # the thread goes on with the session, and the middleware would clean up under it.
        with anyio.CancelScope(shield=True):
            return await anyio.to_thread.run_sync(work, values, limiter=limiter)

    deferred_auth = Annotated[DeferredCaller, Depends(defer_caller)]
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            p.replace(annotation=deferred_auth) if p.name in auth_params else p
            for p in signature.parameters.values()
        ],
        return_annotation=get_typed_return_annotation(endpoint),
    )
    for wrapper in (run, work):
        wrapper.__name__ = endpoint.__name__
        wrapper.__qualname__ = endpoint.__qualname__
        wrapper.__module__ = endpoint.__module__
        wrapper.__doc__ = endpoint.__doc__
    return run
