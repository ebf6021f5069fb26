"""One documented method per call; its coroutine and module-level functions derived from it.

A call is written as a flow (:mod:`._calls`) and documented once, on the sync method of
:class:`~._client.DatapilotClient`. From that method come the coroutine method
(``load`` → ``aload``) and the module-level functions that use the default client
(``dp.load``, ``dp.aload``), with the same signature and the method's docstring, its
summary adapted, as dask's ``derived_from`` does for its pandas-like API.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


def runs(flow: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make the decorated method run ``flow`` with its arguments, blocking.

    The decorated function gives the signature (with its defaults) and the docstring;
    its body is not run. The flow receives the client and every argument, defaults
    applied, in the order of the signature.

    Parameters
    ----------
    flow : callable
        ``flow(client, *arguments)`` returning a :data:`~._flow.Flow`.
    """

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def sync(self: Any, *args: Any, **kwargs: Any) -> Any:
            return self._run(flow(*_arguments(signature, self, args, kwargs)))

        sync.__flow__ = flow  # type: ignore[attr-defined]
        return sync

    return decorate


def asynchronous(method: Callable[..., Any]) -> Callable[..., Any]:
    """The coroutine method of a :func:`runs` method: same flow, run on the event loop.

    Parameters
    ----------
    method : callable
        A method decorated with :func:`runs`; the coroutine is named ``a<name>``.
    """
    flow = method.__flow__  # type: ignore[attr-defined]
    signature = inspect.signature(method)

    async def coroutine(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await self._arun(flow(*_arguments(signature, self, args, kwargs)))

    _name(coroutine, method, "a" + method.__name__)
    coroutine.__signature__ = signature  # type: ignore[attr-defined]
    coroutine.__doc__ = derived_doc(
        method.__doc__,
        ", without blocking the event loop.",
        f"The coroutine of :meth:`{method.__name__}`: the same call, awaited.",
    )
    return coroutine


def with_default_client(
    method: Callable[..., Any], get_client: Callable[[], Any]
) -> Callable[..., Any]:
    """A module-level function that calls ``method`` on the default client.

    Parameters
    ----------
    method : callable
        A method of :class:`~._client.DatapilotClient` (sync or coroutine).
    get_client : callable
        Returns the default client, at each call.
    """
    name = method.__name__
    signature = inspect.signature(method)
    parameters = list(signature.parameters.values())[1:]  # without self
    if inspect.iscoroutinefunction(method):

        async def function(*args: Any, **kwargs: Any) -> Any:
            return await getattr(get_client(), name)(*args, **kwargs)

    else:

        def function(*args: Any, **kwargs: Any) -> Any:
            return getattr(get_client(), name)(*args, **kwargs)

    _name(function, method, name)
    function.__qualname__ = name
    function.__module__ = get_client.__module__
    function.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    function.__doc__ = derived_doc(
        method.__doc__,
        ", with the default client.",
        f"See :meth:`DatapilotClient.{name}`; the client is :func:`get_client`'s.",
    )
    return function


def derived_doc(doc: str | None, summary_end: str, note: str) -> str:
    """A method's docstring with its summary line extended and a note after it.

    Parameters
    ----------
    doc : str
        The original docstring.
    summary_end : str
        Replaces the summary line's final period (``", with the default client."``).
    note : str
        A paragraph inserted after the summary.
    """
    text = inspect.cleandoc(doc or "")
    summary, _, rest = text.partition("\n")
    summary = summary.rstrip().removesuffix(".") + summary_end
    return f"{summary}\n\n{note}\n{rest}".rstrip() + "\n"


def _arguments(
    signature: inspect.Signature, self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[Any]:
    """``self`` and the arguments of a call, defaults applied, in signature order."""
    bound = signature.bind(self, *args, **kwargs)
    bound.apply_defaults()
    return list(bound.arguments.values())


def _name(function: Callable[..., Any], method: Callable[..., Any], name: str) -> None:
    function.__name__ = name
    function.__qualname__ = method.__qualname__.rsplit(".", 1)[0] + "." + name
    function.__module__ = method.__module__
