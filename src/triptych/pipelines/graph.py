"""The DAG a traced ``@pipeline`` function builds: one node per step call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from triptych.errors import InvalidInput
from triptych.pipelines.step import Output, Step


@dataclass
class Node:
    """One call of a step: which outputs feed its inputs, and the constants it was given."""

    name: str
    step: Step
    inputs: dict[str, Output] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)

    @property
    def upstream(self) -> list[str]:
        return sorted({o.node for o in self.inputs.values()})


class Graph:
    """Nodes in the order they were called (a topological order, since an output exists only
    after its step was called)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: dict[str, Node] = {}

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            bound = step.signature.bind_partial(*args, **kwargs)
        except TypeError as e:
            raise InvalidInput(f"step {step.name!r}: {e}") from None
        name = step.name
        n = 2
        while name in self.nodes:
            name = f"{step.name}_{n}"
            n += 1
        node = Node(name, step)
        for arg, value in bound.arguments.items():
            if isinstance(value, Output):
                node.inputs[arg] = value
            elif isinstance(value, (tuple, list)) and any(isinstance(v, Output) for v in value):
                raise InvalidInput(
                    f"step {name!r}: argument {arg!r} is a list of outputs",
                    hint="pass each output as its own argument",
                )
            else:
                try:
                    json.dumps(value, allow_nan=False)
                except (TypeError, ValueError):
                    raise InvalidInput(
                        f"step {name!r}: argument {arg!r} is a {type(value).__name__}, which "
                        "is neither a step output nor a JSON parameter",
                        hint="produce data in a step and pass its output, or pass numbers, "
                        "strings, lists or dicts",
                    ) from None
                node.constants[arg] = value
        self.nodes[name] = node
        outputs = tuple(Output(name, o) for o in step.outputs)
        return outputs[0] if len(outputs) == 1 else outputs

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def downstream(self, name: str) -> set[str]:
        """Every node that depends, directly or not, on ``name``."""
        found: set[str] = set()
        for node in self.nodes.values():  # topological: parents come first
            if any(u == name or u in found for u in node.upstream):
                found.add(node.name)
        return found

    def levels(self) -> dict[str, int]:
        """Depth of each node: 0 for sources, 1 + the deepest parent otherwise."""
        depth: dict[str, int] = {}
        for node in self.nodes.values():
            depth[node.name] = 1 + max((depth[u] for u in node.upstream), default=-1)
        return depth

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "steps": [
                {
                    "name": n.name,
                    "step": n.step.qualname,
                    "inputs": {a: f"{o.node}.{o.name}" for a, o in n.inputs.items()},
                    "outputs": list(n.step.outputs),
                    "cache": n.step.cache,
                    "upstream": n.upstream,
                }
                for n in self.nodes.values()
            ],
        }
