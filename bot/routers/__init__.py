"""HTTP routers, one per resource: ``chat`` (``/api/chat``) and ``health`` (``/healthz``)."""
