"""Sapheneia's web UI: a Gradio app that calls the REST API over HTTP like any other client."""
