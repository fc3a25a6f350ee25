"""What every tab's handlers share: the signed-in caller's key, and errors as readable messages.

Errors the user can fix (and API errors) become escaped Markdown messages; nothing unexpected
reaches the page as a traceback.
"""

from __future__ import annotations

import logging

import gradio as gr

from frontend.api_client import ApiClient, ApiError, MissingKey
from frontend.auth import Sessions
from frontend.handlers import UserError
from frontend.tables import DataError
from frontend.text import error
from sapheneia.errors import SapheneiaError

logger = logging.getLogger("ray.serve")

EXPECTED = (UserError, ApiError, DataError, SapheneiaError)


def readable(problem: Exception) -> str:
    """A problem as an escaped Markdown error; an unexpected one is logged, not shown."""
    if isinstance(problem, EXPECTED):
        return error(problem)
    logger.exception("UI handler failed")
    return error(f"unexpected problem in the UI ({type(problem).__name__}); see the server log")


class SignedIn:
    """Handlers bound to one API base URL; each finds its caller's key by the signed-in session.

    ``request.username`` is the handle Gradio derived from the sign-in cookie (frontend/auth.py);
    the key is looked up per call and never kept in a component, a State or the page.
    """

    def __init__(
        self, api_base_url: str, sessions: Sessions, *, max_upload_bytes: int, keep_files_s: int
    ) -> None:
        self.api_base_url = api_base_url
        self.sessions = sessions
        self.max_upload_bytes = max_upload_bytes
        self.keep_files_s = keep_files_s

    def _key(self, request: gr.Request) -> str:
        """The signed-in key; ties this page session to the sign-in so its data ends with it."""
        key = self.sessions.key_for(request.username)
        if key is None:
            raise MissingKey("Your sign-in has ended: reload the page and sign in again.")
        self.sessions.attach(request.username, request.session_hash)
        return key

    def client(self, request: gr.Request) -> ApiClient:
        """A client with the caller's key; MissingKey (before any request) when signed out."""
        return ApiClient(self.api_base_url, self._key(request))
