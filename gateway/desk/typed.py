"""The console's command language: what an agent types after `/ticket`, read into a typed
command. The same for every console with text commands.

    status|resolve|reopen|pending N · assign N @person · priority N alta|high… ·
    note N text · reply N name · remind N 15:00 · find text · template KEY es|en [channel]

Example:
    >>> read(Typed(pedro, "resolve #1042", ref="t1"))                 # doctest: +SKIP
    Resolve(actor=…, number=1042)
    >>> read(Typed(pedro, "dance", ref="t1"))                          # doctest: +SKIP
    Help(topic='commands')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.core.commands import (
    Assign,
    CannedReply,
    Command,
    Find,
    Note,
    OpenTemplate,
    Pending,
    Remind,
    Reopen,
    Resolve,
    SetPriority,
    ShowTicket,
    Typed,
)

_NUMBERED = {"status": ShowTicket, "resolve": Resolve, "reopen": Reopen, "pending": Pending}
_ADDRESS = re.compile(r"@([A-Z][A-Z0-9]{2,})")  # "@U0LAURA": a console address
_NUMBER = re.compile(r"#?([1-9][0-9]{0,8})")  # a ticket number (it fits the database's int)


@dataclass(frozen=True)
class Help:
    """Not a command: show how to use one (`topic`: commands, replies, templates)."""

    topic: str = "commands"


def read(typed: Typed) -> Command | Help:
    """The command an agent typed, or the help she needs."""
    words = typed.text.split()
    if not words:
        return Help()
    verb, rest, actor = words[0].lower(), words[1:], typed.actor
    if verb == "find":
        return Find(actor, " ".join(rest))
    if verb == "template":
        if len(rest) < 2:
            return Help("templates")
        return OpenTemplate(actor, rest[0], rest[1], rest[2] if len(rest) > 2 else "")
    if not rest or not (found := _NUMBER.fullmatch(rest[0])):
        return Help()
    number, args = int(found.group(1)), rest[1:]
    if verb in _NUMBERED:
        return _NUMBERED[verb](actor, number)
    if verb == "reply":
        return CannedReply(actor, number, args[0] if args else "", typed.ref)
    if not args:
        return Help()
    if verb == "assign":
        return _assign(typed, number, args[0])
    if verb == "priority":
        return SetPriority(actor, number, args[0])
    if verb == "remind":
        return Remind(actor, number, args[0])
    if verb == "note":
        return Note(actor, number, " ".join(args), typed.ref)
    return Help()


def _assign(typed: Typed, number: int, who: str) -> Assign:
    """"@U0LAURA" (a mention the console resolved: `typed.people` has her name) or a
    plain name ("@Laura", "Laura")."""
    found = _ADDRESS.fullmatch(who)
    if found and found.group(1) in typed.people:
        return Assign(typed.actor, number, typed.people[found.group(1)], found.group(1))
    return Assign(typed.actor, number, who.lstrip("@"))
