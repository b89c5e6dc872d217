"""Test helpers that ship with the library.

:mod:`sammo_core.testing.chat_server` holds a loopback OpenAI-compatible chat server
(``from sammo_core.testing.chat_server import ChatServer``). It is not re-exported here, so that
``python -m sammo_core.testing.chat_server`` runs the module only once.
"""

__all__: list[str] = []
