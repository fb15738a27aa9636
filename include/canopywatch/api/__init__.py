"""The HTTP API: OGC API Features, vector and COG tiles, STAC search, area statistics, the map.

``create_app(settings)`` (``canopywatch.api.app``) builds the FastAPI application;
``python -m canopywatch.api`` serves it with uvicorn on ``127.0.0.1:<api_port>``.
"""
