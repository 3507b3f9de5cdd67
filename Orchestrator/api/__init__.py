"""The local control API: other programs on the machine use the daemon's loaded models.

Served by uvicorn inside the daemon's own event loop (server.start_api), sharing its Assistant:
a request never loads a second copy of a model. See docs/API.md for the routes.
"""
