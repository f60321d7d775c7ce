"""A stand-in for DNS, which the tests cannot run: ``socket.getaddrinfo`` patched so
that one name answers a given address on each lookup in turn (the last one for
every lookup after), as a rebinding attacker's name server would. Other names
resolve as usual."""
from __future__ import annotations

import socket
from typing import Any

import pytest


class Rebinding:
    def __init__(self, name: str, answers: list[str]) -> None:
        self.name = name
        self.answers = list(answers)
        self.lookups = 0

    def then(self, *answers: str) -> None:
        """Answer ``answers`` from the next lookup on."""
        self.answers = self.answers[:self.lookups] + list(answers)


def rebinding(monkeypatch: pytest.MonkeyPatch, name: str, *answers: str) -> Rebinding:
    """Make ``name`` resolve to ``answers[0]`` on its first lookup, ``answers[1]``
    on its second, and so on (an answer may list several addresses: "a,b");
    returns the record, which counts the lookups."""
    real = socket.getaddrinfo
    record = Rebinding(name, list(answers))

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.lower() == name:
            answer = record.answers[min(record.lookups, len(record.answers) - 1)]
            record.lookups += 1
            return [info for address in answer.split(",") for info in real(address, port, *args, **kwargs)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return record
