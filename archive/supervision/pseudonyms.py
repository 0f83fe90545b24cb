"""Participants as reviewers see them: stable pseudonyms instead of names, e-mails and ids.

A reviewer judges what was said, not who said it, and supervision is fairer when the reviewer
cannot tell whose conversation it is. Each person gets a label keyed by the tenant's identity key
("Visitor 3F2A9C", "Agent 19BD04"): the same person has the same label in every conversation of
the tenant (a reviewer can see that one agent keeps promising returns), and nobody can work the
person out from the label. Names, e-mail addresses and ids are replaced wherever they appear in
the conversation, including inside message text ("Hi Ola" → "Hi Visitor 3F2A9C"); a name the
platform never told us (a third person mentioned in passing) cannot be recognised and stays.
"""

from __future__ import annotations

import re
from typing import Iterable

import msgspec

from archive.models import StoredConversation
from archive.tenancy import TenantContext

PERSON_ROLES = ("visitor", "agent")
MIN_PART = 3  # shorter name parts ("Li", "Jo") are too common as words to replace safely


class Segment(msgspec.Struct, omit_defaults=True):
    """A run of message text; ``mark`` says which detector matched it (query or pattern)."""

    text: str
    mark: str | None = None


class Pseudonyms:
    """The labels of one conversation's participants, and text with them swapped in."""

    def __init__(self, ctx: TenantContext, stored: StoredConversation) -> None:
        self._ctx = ctx
        replacements: dict[str, str] = {}
        visitor = stored.visitor
        self.visitor_label = self.label("visitor", visitor.id)
        self._add(replacements, self.visitor_label, visitor.id, visitor.name, visitor.email)
        self._agents: dict[str, str] = {}
        for agent in stored.agents:
            self._agents[agent.id] = self.label("agent", agent.id)
            self._add(replacements, self._agents[agent.id], agent.id, agent.name, agent.email)
        for message in stored.messages:
            sender = message.sender
            if sender.role in PERSON_ROLES:
                self._add(replacements, self.sender_label(sender.role, sender.id), sender.id, sender.name, None)
        ordered = sorted(replacements, key=lambda s: (-len(s), s))
        self._replacements = {k.casefold(): v for k, v in replacements.items()}
        self._pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(s) for s in ordered) + r")(?!\w)", re.IGNORECASE) if ordered else None

    def label(self, role: str, person_id: str) -> str:
        digest = self._ctx.crypto.identity_hash(f"pseudonym|{role}|{person_id}")
        return f"{role.capitalize()} {digest[:6].upper()}"

    def sender_label(self, role: str, sender_id: str | None) -> str:
        if role == "visitor":
            return self.visitor_label
        if sender_id is None:
            return role.capitalize()
        return self._agents.get(sender_id) or self.label(role, sender_id)

    @staticmethod
    def email(label: str) -> str:
        return f"{label.lower().replace(' ', '-')}@pseudonym.invalid"

    @staticmethod
    def _add(replacements: dict[str, str], label: str, person_id: str | None, name: str | None, email: str | None) -> None:
        for value in _identifying(person_id, name, email):
            replacements.setdefault(value, label)

    def _spans(self, text: str) -> list[tuple[int, int, str]]:
        if self._pattern is None:
            return []
        return [(m.start(), m.end(), self._replacements[m.group().casefold()]) for m in self._pattern.finditer(text)]

    def text(self, text: str) -> str:
        return "".join(s.text for s in self.segments(text, []))

    def segments(self, text: str, marks: list[tuple[int, int, str]], *, reveal: bool = False) -> list[Segment]:
        """``text`` cut into runs, marked where a detector matched, participants replaced by their
        labels (unless ``reveal``). Replacement is decided on the original text, so a highlight
        that covers part of a name never leaves the rest of the name readable."""
        names = [] if reveal else self._spans(text)
        cuts = sorted({0, len(text), *(p for s, e, _ in marks for p in (s, e)), *(p for s, e, _ in names for p in (s, e))})
        out: list[Segment] = []
        for start, end in zip(cuts, cuts[1:]):
            name = next(((s, e, label) for s, e, label in names if s < end and e > start), None)
            if name is not None:
                if name[0] < start:
                    continue  # the label was written at the name's first run
                start, end, piece = name
            else:
                piece = text[start:end]
            mark = next((source for s, e, source in marks if s < end and e > start), None)
            if out and out[-1].mark == mark:
                out[-1].text += piece
            else:
                out.append(Segment(piece, mark))
        return out


def _identifying(person_id: str | None, name: str | None, email: str | None) -> Iterable[str]:
    if name and name.strip():
        yield name.strip()
        yield from (part for part in re.split(r"\s+", name.strip()) if len(part) >= MIN_PART)
    if email and email.strip():
        yield email.strip()
    # An id is replaced in text only when it cannot be mistaken for a number someone typed.
    if person_id and len(person_id) >= MIN_PART and not person_id.isdigit():
        yield person_id
