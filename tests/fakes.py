"""A fake runner for unit tests: records argv, answers from a script of canned results."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from opsd.adapters.runner import Completed


class UnscriptedCommand(AssertionError):
    """A unit test ran a command it did not script: a fake that answered 'success' to anything would hide it."""


@dataclass
class FakeRunner:
    """``answers`` maps a command word (the last argv item, e.g. pgBackRest's ``info``) to (rc, stdout, stderr).
    Any other command fails the test."""

    answers: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    stdins: list[str | None] = field(default_factory=list)
    cancelled: bool = False

    def run(self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
            as_user: bool = True, on_line: Callable[[str, str], None] | None = None,
            log_output: bool = True, stdin: str | None = None, keep_stdout: bool = True) -> Completed:
        self.calls.append(list(argv))
        self.stdins.append(stdin)
        if argv[-1] not in self.answers:
            raise UnscriptedCommand(f"unscripted command: {' '.join(argv)} (script {argv[-1]!r} in answers)")
        rc, out, err = self.answers[argv[-1]]
        return Completed(tuple(argv), rc, out, err, 0.01)

    def cancel_all(self) -> None:
        self.cancelled = True

    def stop_running(self, last_arg: str) -> int:
        return 0
