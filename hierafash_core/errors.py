"""The one error the method raises for bad input: it names the offending input and says the fix.

Core functions raise `HieraFashError(problem, input_name)`; the node layer adds the node's name
(`nodes.common.node_errors`) and the CLI the command's, so every message reads
"<node or command>: input '<name>': <problem and fix>" without guessing the input from the text.
"""

from __future__ import annotations


class HieraFashError(ValueError):
    """Invalid input to the method. `input_name` is the input (widget, socket or option) at fault, if known."""

    def __init__(self, problem: str, input_name: str | None = None):
        super().__init__(problem)
        self.problem = problem
        self.input_name = input_name

    def for_input(self, input_name: str) -> HieraFashError:
        """The same error, blamed on `input_name` unless it already names an input."""
        if self.input_name is None:
            self.input_name = input_name
        return self
