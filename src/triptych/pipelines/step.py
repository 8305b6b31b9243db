"""``@step``: a function whose inputs and outputs travel as artifacts between runs.

Called inside a ``@pipeline`` function, a step does not run: it adds a node to the graph being
traced and returns :class:`Output` handles, which later calls take as inputs; that is how the
graph is inferred. Called anywhere else it is the plain function, so unit tests call it as is.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from triptych.errors import InvalidInput

#: The graph a ``@pipeline`` function is adding nodes to, while it is traced.
tracing: contextvars.ContextVar[Any] = contextvars.ContextVar("triptych_tracing", default=None)


@dataclass(frozen=True)
class Output:
    """A step output inside a pipeline being traced: pass it to another step."""

    node: str
    name: str

    def __iter__(self) -> Any:
        raise InvalidInput(
            f"step {self.node!r} has one output, which cannot be unpacked",
            hint='declare several with @step(outputs=("train", "test")) and return a tuple',
        )

    def __bool__(self) -> bool:
        raise InvalidInput(
            f"the output of step {self.node!r} is not known while the pipeline is traced",
            hint="branch inside a step, not in the @pipeline function",
        )


@dataclass
class Step:
    """A step: the function, the names of its outputs and how it runs."""

    fn: Callable[..., Any]
    name: str
    outputs: tuple[str, ...] = ("output",)
    cache: bool = True
    retries: int = 0
    retry_delay: float = 1.0
    num_cpus: float = 1.0
    signature: inspect.Signature = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.signature = inspect.signature(self.fn)
        for p in self.signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise InvalidInput(
                    f"step {self.name!r} takes *{p.name}: a step's arguments must be named",
                    hint="list each input and parameter as its own argument",
                )
        functools.update_wrapper(self, self.fn)

    @property
    def qualname(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = tracing.get()
        if graph is None:
            return self.fn(*args, **kwargs)
        return graph.add(self, args, kwargs)

    def options(self, **changes: Any) -> Step:
        """A copy with other options, e.g. ``train.options(name="train_big", retries=2)``."""
        unknown = set(changes) - {"name", "cache", "retries", "retry_delay", "num_cpus"}
        if unknown:
            raise InvalidInput(f"unknown step options: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)


@overload
def step(fn: Callable[..., Any]) -> Step: ...


@overload
def step(
    fn: None = None,
    *,
    name: str | None = None,
    outputs: Sequence[str] | str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    num_cpus: float = 1.0,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    outputs: Sequence[str] | str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    num_cpus: float = 1.0,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make ``fn`` a pipeline step.

    ``outputs`` names several outputs (the function returns a tuple of as many values);
    ``cache=False`` always re-runs it; ``retries`` re-runs a failing step that many more times,
    ``retry_delay`` seconds apart; ``num_cpus`` is what it asks of a Ray cluster."""

    def wrap(f: Callable[..., Any]) -> Step:
        names = (outputs,) if isinstance(outputs, str) else tuple(outputs or ("output",))
        if not names or len(set(names)) != len(names):
            raise InvalidInput(f"step {f.__name__!r}: outputs must be distinct names")
        for n in names:
            if not n.isidentifier():
                raise InvalidInput(f"step {f.__name__!r}: output name {n!r} is not an identifier")
        if retries < 0 or retry_delay < 0 or num_cpus < 0:
            raise InvalidInput(f"step {f.__name__!r}: retries, retry_delay and num_cpus >= 0")
        return Step(f, name or f.__name__, names, cache, retries, retry_delay, num_cpus)

    return wrap(fn) if fn is not None else wrap
