"""Chat sessions of API clients: each its own Conversation, never the voice loop's.

Bounded (api.max_sessions, least recently used dropped first) because ids come from clients
and a client that invents a new id per request must not grow the daemon without end.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from LLM import Conversation


class SessionStore:
    def __init__(self, max_sessions: int, new_conversation: Callable[[], Conversation]):
        self.max_sessions = max_sessions
        self._new = new_conversation
        self._sessions: OrderedDict[str, Conversation] = OrderedDict()

    def get(self, session_id: str | None) -> Conversation:
        """The session's conversation (created on first use); no id = a one-off conversation."""
        if session_id is None:
            return self._new()
        conversation = self._sessions.pop(session_id, None) or self._new()
        self._sessions[session_id] = conversation
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return conversation

    def __len__(self) -> int:
        return len(self._sessions)
