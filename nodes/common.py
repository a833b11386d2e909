"""Shared pieces of the node layer: custom socket types, schema helpers, error wording."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Callable

from comfy_api.latest import io

from ..hierafash_core.errors import HieraFashError

CATEGORY = "HieraFashDiff"

# Custom socket types. Their names are part of saved workflows: never rename them.
Design = io.Custom("HIERAFASH_DESIGN")
Schedule = io.Custom("HIERAFASH_SCHEDULE")
BodyMasks = io.Custom("HIERAFASH_BODY_MASKS")

_SCHEMA_FIELDS = {f.name for f in dataclasses.fields(io.Schema)}


def schema(*, search_aliases: list[str] = (), **kwargs) -> io.Schema:
    """io.Schema, plus search aliases where the running ComfyUI supports them (newer than 0.3.75)."""
    if "search_aliases" in _SCHEMA_FIELDS:
        kwargs["search_aliases"] = list(search_aliases)
    return io.Schema(**kwargs)


def advanced(input_cls: type, *args, **kwargs):
    """An input marked advanced (collapsed by default) where the running ComfyUI supports it."""
    if "advanced" in inspect.signature(input_cls.__init__).parameters:
        kwargs["advanced"] = True
    return input_cls(*args, **kwargs)


class HieraFashInputError(ValueError):
    """Bad input to a node: the message names the node, the input and the fix."""


def input_error(node_name: str, input_name: str, problem: str) -> HieraFashInputError:
    return HieraFashInputError(f"{node_name}: input '{input_name}': {problem}")


@contextlib.contextmanager
def node_errors(node_name: str, default_input: str):
    """Turn the core's HieraFashError into the node's message, blaming the input the core named
    (or `default_input`); used by both `execute` and `validate_inputs`."""
    try:
        yield
    except HieraFashError as exc:
        raise input_error(node_name, exc.input_name or default_input, exc.problem) from None


def validation_result(node_name: str, default_input: str, check: Callable[[], object]) -> bool | str:
    """`validate_inputs`'s answer: True, or the message `node_errors` gives for the core's error."""
    try:
        with node_errors(node_name, default_input):
            check()
    except HieraFashInputError as exc:
        return str(exc)
    return True
