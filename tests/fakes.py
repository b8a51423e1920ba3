"""A fake runner for unit tests: records argv, answers from a script of canned results."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from opsd.adapters.runner import Completed


@dataclass
class FakeRunner:
    """``answers`` maps a pgBackRest command word (the last argv item) to (rc, stdout, stderr)."""

    answers: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    cancelled: bool = False

    def run(self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
            as_user: bool = True, on_line: Callable[[str, str], None] | None = None,
            log_output: bool = True) -> Completed:
        self.calls.append(list(argv))
        rc, out, err = self.answers.get(argv[-1], (0, "", ""))
        return Completed(tuple(argv), rc, out, err, 0.01)

    def cancel_all(self) -> None:
        self.cancelled = True
