"""What an operator watches: Prometheus metrics and structured log lines.

Infrastructure beside `store/` and `llm/`: features call `Metrics` methods and log
through the standard `logging` module; nothing here knows about HTTP (the request
observer and the `/metrics` route live in `web/`).
"""
